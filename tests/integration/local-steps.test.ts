// Local steps and compression with real processes: the server, two agent processes over WebSocket, real MNIST.
// Synchronous float32 gradient rounds against DiLoCo-style local steps with int8 updates, on the same sample
// budget; then top-k pseudo-gradients through the real gateway. Each run is a headless server that exits with a
// JSON summary once its budget is applied.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type ServerProcess } from '../support/server-process';

interface Summary {
  ok: boolean;
  state: string;
  finalAccuracy: number;
  rounds: number;
  samples: number;
  nodes: number;
}

/** Rejections that would mean a codec frame was refused (a late update's STALE_ROUND is normal straggler handling). */
const CODEC_REJECTION = /rejected update .*: (FRAME_\w+|CHECKSUM|NON_FINITE|PARAM_COUNT|ABSURD_NORM|BAD_\w+):/;

const BUDGET = ['--max-samples', '16384', '--eval-every', '1000', '--nodes', '2', '--headless', '--timeout', '240'];

async function run(args: string[]): Promise<{ summary: Summary; output: string; code: number | null }> {
  const server: ServerProcess = await startServer([...BUDGET, ...args]);
  try {
    const code = await server.exited;
    const json = server.output().match(/^\{\n[\s\S]*?\n\}$/m);
    if (!json) throw new Error(`no JSON summary in the output:\n${server.output().slice(-3000)}`);
    return { summary: JSON.parse(json[0]) as Summary, output: server.output(), code };
  } finally {
    await server.stop();
  }
}

describe('local steps and compressed updates end to end', () => {
  let sync: Awaited<ReturnType<typeof run>>;
  let local: Awaited<ReturnType<typeof run>>;
  let topK: Awaited<ReturnType<typeof run>>;

  beforeAll(async () => {
    sync = await run([]);
    local = await run(['--local-steps', '8', '--batch-size', '32', '--codec', 'int8']);
    topK = await run(['--local-steps', '8', '--batch-size', '32', '--codec', 'top-k', '--top-k', '0.1', '--max-samples', '4096']);
  });

  afterAll(() => undefined);

  it('synchronous float32 rounds learn (the baseline)', () => {
    expect(sync.code, sync.output.slice(-2000)).toBe(0);
    expect(sync.summary).toMatchObject({ ok: true, state: 'completed', nodes: 2 });
    expect(sync.summary.finalAccuracy).toBeGreaterThan(0.85);
  });

  it('local steps with int8 pseudo-gradients reach the synchronous accuracy on the same 16k samples, in 8x fewer rounds per sample', () => {
    expect(local.code, local.output.slice(-2000)).toBe(0);
    expect(local.output).toMatch(/local steps H = 8 \(outer: Nesterov lr 0\.7\), codec int8/);
    expect(local.summary).toMatchObject({ ok: true, state: 'completed', nodes: 2 });
    // Same budget: rounds carry 8 x 32 samples per node instead of 128.
    expect(local.summary.samples).toBeGreaterThanOrEqual(16384);
    expect(local.summary.rounds).toBeLessThan(sync.summary.rounds);
    // Within 2 points on this small budget (the bench measures the 0.5-point target on a full run).
    expect(local.summary.finalAccuracy).toBeGreaterThan(sync.summary.finalAccuracy - 0.02);
    // No frame of the codec was refused by the gateway or the engine.
    expect(local.output).not.toMatch(CODEC_REJECTION);
  });

  it('top-k pseudo-gradients with error feedback pass the real gateway and train', () => {
    expect(topK.code, topK.output.slice(-2000)).toBe(0);
    expect(topK.output).toMatch(/codec top-k 0\.1/);
    expect(topK.summary).toMatchObject({ ok: true, state: 'completed' });
    expect(topK.output).not.toMatch(CODEC_REJECTION);
    expect(topK.summary.finalAccuracy).toBeGreaterThan(0.6);
  });
});
