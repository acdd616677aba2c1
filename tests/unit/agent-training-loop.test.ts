// The agent's round with a fake trainer and dataset: what goes out, in which frame, and when nothing does.
import { describe, expect, it } from 'vitest';
import { ProgressMeter } from '../../src/agent/progress';
import { TrainingLoop, type TrainingSession } from '../../src/agent/training-loop';
import { decodeFrame, FrameKind } from '../../src/protocol/frame';
import type { Assignment } from '../../src/protocol/messages';

const P = 1000;

function setup(options: { microBatch?: number; nodeId?: number; onStep?: (call: number) => void; onActive?: (round: number | null) => void } = {}) {
  const calls: { count: number; weight: number; into: Float32Array }[] = [];
  const sent: Uint8Array[] = [];
  const logs: string[] = [];
  const session: TrainingSession = {
    session: { sessionId: 3, seed: 11 },
    dataset: {
      trainSize: 500,
      inputShape: [2],
      fillTrainBatch: (indices, x, y) => {
        for (let i = 0; i < indices.length; i++) y[i] = indices[i] % 10;
      },
    },
    spec: { paramCount: P },
    trainer: {
      setParams: (flat) => expect(flat.length).toBe(P),
      accumulateGradient: (_x, _y, count, into, weight) => {
        calls.push({ count, weight, into });
        // The "gradient" of every micro-batch is i + 1 at coordinate i, so the weighted sum is too.
        for (let i = 0; i < into.length; i++) into[i] += (i + 1) * weight;
        options.onStep?.(calls.length);
        return 2; // mean loss of the micro-batch
      },
    },
  };
  const link = { nodeId: options.nodeId ?? 2, sendFrame: (bytes: Uint8Array) => (sent.push(bytes), true) };
  const loop = new TrainingLoop({ session: () => session, link, progress: new ProgressMeter(), log: (l) => logs.push(l), microBatch: options.microBatch ?? 16, onActive: options.onActive });
  return { loop, calls, sent, logs };
}

const assignment: Assignment = { sessionId: 3, round: 5, modelVersion: 5, nodeId: 2, attempt: 1, epoch: 0, shardStart: 100, shardCount: 40, batchSize: 40, deadlineAt: 0 };
const model = (version = 5, sessionId = 3, n = P) => ({
  header: { version: 1, kind: FrameKind.Model, codec: 0, sessionId, round: version, nodeId: 0, attempt: 0, modelVersion: version, sampleCount: 0, paramCount: n, checksum: 0, trainLoss: Number.NaN },
  values: new Float32Array(n),
});

describe('agent training loop', () => {
  it('trains the shard in micro-batches, summing straight into the frame it sends', async () => {
    const { loop, calls, sent } = setup();
    loop.onModelFrame(model());
    loop.assign(assignment);
    await loop.idle();
    expect(calls.map((c) => [c.count, c.weight])).toEqual([
      [16, 0.4],
      [16, 0.4],
      [8, 0.2],
    ]);
    expect(sent).toHaveLength(1);
    // The trainer wrote into the very buffer that went out: no intermediate array, no copy.
    for (const c of calls) expect(c.into.buffer).toBe(sent[0].buffer);
    const { header, payload } = decodeFrame(sent[0]);
    expect(header).toMatchObject({ kind: FrameKind.Gradient, sessionId: 3, round: 5, nodeId: 2, attempt: 1, modelVersion: 5, sampleCount: 40, paramCount: P, trainLoss: 2 });
    for (let i = 0; i < P; i += 97) expect(payload[i]).toBeCloseTo(i + 1, 3);
    expect(loop.currentRound).toBeNull();
    expect(loop.samplesPerSecond).toBeGreaterThan(0);
  });

  it('tells its thread\'s parent when a round starts and ends (heartbeats report it from the main thread)', async () => {
    const seen: Array<number | null> = [];
    const { loop } = setup({ onActive: (round) => seen.push(round) });
    loop.onModelFrame(model());
    loop.assign(assignment);
    loop.assign({ ...assignment, shardStart: 10_000 }); // skipped before it starts: no start, no end
    await loop.idle();
    expect(seen).toEqual([5, null]);
  });

  it('skips an assignment it cannot train for, saying why', async () => {
    const { loop, sent, logs } = setup();
    // Rounds run queued, with the model held when they start: settle each case before the next.
    const attempt = async (a: Assignment, frame?: ReturnType<typeof model>) => {
      if (frame) loop.onModelFrame(frame);
      loop.assign(a);
      await loop.idle();
    };
    await attempt(assignment);
    await attempt(assignment, model(4));
    await attempt(assignment, model(5, 9));
    await attempt(assignment, model(5, 3, P - 1));
    await attempt({ ...assignment, sessionId: 8 }, model());
    await attempt({ ...assignment, shardStart: 10_000 });
    expect(sent).toHaveLength(0);
    expect(logs).toEqual([
      expect.stringMatching(/holding none; skipped/),
      expect.stringMatching(/model version 5 of session 3 but holding version 4 of session 3; skipped/),
      expect.stringMatching(/holding version 5 of session 9; skipped/),
      expect.stringMatching(/model frame has 999 parameters, the session's model 1000; round 5 skipped/),
      expect.stringMatching(/assignment for session 8 but prepared for 3; skipped/),
      expect.stringMatching(/shard \[10000, \+40\) is empty for 500 training samples; skipped/),
    ]);
  });

  it('stops a cancelled round between micro-batches and sends nothing', async () => {
    let loop!: TrainingLoop;
    const s = setup({ microBatch: 8, onStep: (call) => call === 2 && loop.cancel(5) });
    loop = s.loop;
    loop.onModelFrame(model());
    loop.assign(assignment);
    await loop.idle();
    expect(s.calls).toHaveLength(2);
    expect(s.sent).toHaveLength(0);
    expect(loop.currentRound).toBeNull();
  });

  it('a cancel applies to the assignments received before it, not to a later retry of the round', async () => {
    const { loop, sent } = setup();
    loop.onModelFrame(model());
    loop.assign(assignment);
    loop.cancel(5);
    loop.assign({ ...assignment, attempt: 2 });
    await loop.idle();
    expect(sent.map((b) => decodeFrame(b).header.attempt)).toEqual([2]);
  });

  it('does not send an update computed for another node id', async () => {
    const { loop, sent } = setup({ nodeId: 7 });
    loop.onModelFrame(model());
    loop.assign(assignment);
    await loop.idle();
    expect(sent).toHaveLength(0);
  });
});
