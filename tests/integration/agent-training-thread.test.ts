// The agent's training thread for real (tfjs on wasm in a worker_thread, MNIST): a round whose one micro-batch
// blocks the training thread for most of a second leaves the main thread (where heartbeats are sent) free, the
// model's buffer is transferred in (detached here, not copied) and the update frame's buffer comes back whole.
import { afterAll, describe, expect, it } from 'vitest';

import { TrainingThread } from '../../src/agent/training-thread';
import { initialParams, modelSpec } from '../../src/ml/models';
import { decodeFrame, FrameKind } from '../../src/protocol/frame';
import type { FrameHeader } from '../../src/protocol/frame';

describe('the agent training thread', () => {
  const updates: Array<{ bytes: Uint8Array; round: number }> = [];
  const ready: number[] = [];
  const logs: string[] = [];
  const rounds: number[] = [];
  const thread = new TrainingThread({
    prefer: 'wasm',
    datasets: new Map(),
    // One micro-batch for the whole shard: the training thread is blocked for the whole step.
    microBatch: 8192,
    log: (line) => logs.push(line),
    onReady: (id) => ready.push(id),
    onUpdate: (bytes, round) => updates.push({ bytes, round }),
    onRound: (r) => rounds.push(r.samples),
    onExit: (reason) => logs.push(`exit: ${reason}`),
  });
  afterAll(() => thread.stop());

  it('trains a long step off the main thread and moves frames without copying', async () => {
    const backend = await thread.start();
    expect(backend.name).toBe('wasm');
    expect(logs.join('\n')).toMatch(/backend wasm/);
    const speed = await thread.calibrate();
    expect(speed).toBeGreaterThan(0);

    const spec = modelSpec('mlp');
    thread.setNode(7);
    thread.join({ sessionId: 3, model: 'mlp', dataset: 'mnist', seed: 1, paramCount: spec.paramCount });
    await waitFor(() => ready.includes(3), 60_000);

    const values = initialParams(spec, 1);
    const header: FrameHeader = {
      version: 1,
      kind: FrameKind.Model,
      codec: 0,
      sessionId: 3,
      round: 0,
      nodeId: 0,
      attempt: 0,
      modelVersion: 5,
      sampleCount: 0,
      paramCount: spec.paramCount,
      checksum: 0,
      trainLoss: 0,
    };
    thread.onModelFrame({ header, values });
    // Transferred: this thread's view of the parameters is detached, no copy was made.
    expect(values.buffer.byteLength).toBe(0);

    // Measure the main thread's event-loop lag while the training thread computes.
    let last = performance.now();
    let maxLag = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 10);
      last = now;
    }, 10);
    const started = performance.now();
    thread.assign({ sessionId: 3, round: 11, modelVersion: 5, nodeId: 7, attempt: 2, epoch: 0, shardStart: 0, shardCount: 8192, batchSize: 8192, deadlineAt: Date.now() + 60_000 });
    await waitFor(() => thread.currentRound === 11, 10_000);
    await waitFor(() => updates.length === 1, 60_000);
    const took = performance.now() - started;
    clearInterval(ticker);

    const { bytes, round } = updates[0];
    expect(round).toBe(11);
    // The update came in its own buffer (transferred from the training thread), exactly one frame long.
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
    const decoded = decodeFrame(bytes);
    expect(decoded.header).toMatchObject({ kind: FrameKind.Gradient, sessionId: 3, round: 11, nodeId: 7, attempt: 2, modelVersion: 5, sampleCount: 8192 });
    expect(Number.isFinite(decoded.header.trainLoss)).toBe(true);
    expect(rounds).toEqual([8192]);
    await waitFor(() => thread.currentRound === null, 5_000);
    if (process.env.HYPERGPU_TEST_VERBOSE) console.info(`one ${took.toFixed(0)} ms step in the training thread; main-thread lag at most ${maxLag.toFixed(0)} ms`);
    // The step blocked the training thread for `took` ms; the main thread kept ticking every 10 ms.
    // (Bounded by a share of the step, not a fixed number of ms: a machine shared with other work schedules this
    // thread late now and then, but never for the whole step as when training ran here.)
    expect(took).toBeGreaterThan(300);
    expect(maxLag, `main-thread lag ${maxLag.toFixed(0)} ms during a ${took.toFixed(0)} ms step`).toBeLessThan(took / 3);
  }, 180_000);

  it('stays out of a session whose dataset is not configured here, and says how to configure it', async () => {
    const spec = modelSpec('mlp');
    thread.join({ sessionId: 4, model: 'mlp', dataset: 'digits', seed: 1, paramCount: spec.paramCount });
    await waitFor(() => logs.some((l) => l.includes("dataset 'digits'")), 10_000);
    expect(logs.join('\n')).toMatch(/cannot join session 4: the coordinator asked for dataset 'digits', which is not configured on this machine \(configured: mnist\); start the agent with --dataset digits=\/path\/to\/folder/);
    expect(ready).not.toContain(4);
  }, 30_000);
});

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
