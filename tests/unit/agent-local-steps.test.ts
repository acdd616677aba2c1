// The agent's local steps with a fake trainer whose gradient is known: H inner SGD steps from the received model,
// the pseudo-gradient (start minus end) in the codec the assignment names, and error feedback across rounds.
import { describe, expect, it } from 'vitest';
import { ProgressMeter } from '../../src/agent/progress';
import { TrainingLoop, type TrainingSession } from '../../src/agent/training-loop';
import { FrameCodec } from '../../src/protocol/codecs';
import { decodeFrame, FrameKind } from '../../src/protocol/frame';
import type { Assignment } from '../../src/protocol/messages';

const P = 600;

function setup() {
  const sent: Uint8Array[] = [];
  const steps: { count: number; params: Float32Array }[] = [];
  let current = new Float32Array(P);
  const session: TrainingSession = {
    session: { sessionId: 3, seed: 11 },
    dataset: { trainSize: 5000, inputShape: [2], fillTrainBatch: (indices, _x, y) => y.fill(1, 0, indices.length) },
    spec: { paramCount: P },
    trainer: {
      setParams: (flat) => {
        current = Float32Array.from(flat);
        steps.push({ count: 0, params: current });
      },
      // Gradient of 0.5 * |w - target|^2 with target_i = i / P: w - target. The loop must step on it.
      accumulateGradient: (_x, _y, count, into, weight) => {
        steps.at(-1)!.count += count;
        for (let i = 0; i < P; i++) into[i] += (current[i] - i / P) * weight;
        return 1;
      },
    },
  };
  const loop = new TrainingLoop({ session: () => session, link: { nodeId: 2, sendFrame: (b) => (sent.push(b), true) }, progress: new ProgressMeter(), log: () => undefined, microBatch: 16 });
  return { loop, sent, steps };
}

const sgd = { name: 'sgd' as const, learningRate: 0.5, momentum: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
const base: Assignment = { sessionId: 3, round: 1, modelVersion: 1, nodeId: 2, attempt: 1, epoch: 0, shardStart: 0, shardCount: 4 * 32, batchSize: 32, deadlineAt: 0, localSteps: 4, innerOptimizer: sgd };
const model = (version: number) => ({
  header: { version: 1, kind: FrameKind.Model, codec: 0, sessionId: 3, round: version, nodeId: 0, attempt: 0, modelVersion: version, sampleCount: 0, paramCount: P, checksum: 0, trainLoss: Number.NaN },
  values: new Float32Array(P),
});

describe('agent local steps', () => {
  it('takes H inner steps of batchSize samples and sends start minus end weights as a pseudo-gradient', async () => {
    const { loop, sent, steps } = setup();
    loop.onModelFrame(model(1));
    loop.assign(base);
    await loop.idle();
    expect(steps.map((s) => s.count)).toEqual([32, 32, 32, 32]);
    const { header, payload } = decodeFrame(sent[0]);
    expect(header).toMatchObject({ kind: FrameKind.PseudoGradient, codec: FrameCodec.Float32, sampleCount: 128, round: 1 });
    // SGD lr 0.5 on w - t from 0, four times: w = t (1 - 0.5^4); start - end = -t (1 - 1/16).
    for (let i = 1; i < P; i += 37) expect(payload[i]).toBeCloseTo(-(i / P) * (15 / 16), 5);
  });

  it('sends int8 and top-k frames when assigned, carrying what top-k dropped into the next round', async () => {
    const { loop, sent } = setup();
    loop.onModelFrame(model(1));
    loop.assign({ ...base, codec: 'int8' });
    await loop.idle();
    const int8 = decodeFrame(sent[0]);
    expect(int8.header.codec).toBe(FrameCodec.Int8Block);
    expect(sent[0].byteLength).toBeLessThan(64 + P + 4 * 3 + 1);
    for (let i = 1; i < P; i += 37) expect(int8.payload[i]).toBeCloseTo(-(i / P) * (15 / 16), 2);

    // A fresh agent for top-k, so no int8 rounding residual shifts its choice at the boundary.
    const { loop: fresh, sent: topSent } = setup();
    fresh.onModelFrame(model(2));
    fresh.assign({ ...base, round: 2, modelVersion: 2, codec: 'top-k', topKFraction: 0.1 });
    await fresh.idle();
    fresh.onModelFrame(model(3));
    fresh.assign({ ...base, round: 3, modelVersion: 3, codec: 'top-k', topKFraction: 0.1 });
    await fresh.idle();
    const [second, third] = [decodeFrame(topSent[0]), decodeFrame(topSent[1])];
    expect(second.header.codec).toBe(FrameCodec.TopK);
    const kept = (p: Float32Array) => Array.from(p).filter((v) => v !== 0).length;
    expect(kept(second.payload)).toBe(60);
    expect(kept(third.payload)).toBe(60);
    const u = (i: number) => -(i / P) * (15 / 16);
    // Round 2 keeps the 60 largest magnitudes (indices 540-599) and drops the rest into the residual.
    expect(second.payload[P - 1]).toBeCloseTo(u(P - 1), 4);
    expect(second.payload[P - 61]).toBe(0);
    // Round 3 sends its own update plus the residual: the dropped indices now hold twice their value, so the
    // largest are 480-539 at 2x, and 540-599 (sent last time) wait in the residual in turn.
    expect(third.payload[P - 61]).toBeCloseTo(2 * u(P - 61), 4);
    expect(third.payload[P - 1]).toBe(0);
  });
});
