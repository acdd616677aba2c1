// The runner's fold-on-arrival bookkeeping over a real aggregator backend (the JS one: same port, same bits as
// the kernel): what the engine refuses never reaches the sum, the round's last update (accepted in the step
// that closes the round) is in it, and a mean over any other set of updates than the sum holds is refused.
import { describe, expect, it } from 'vitest';
import { encodeFrame, decodeHeader, FrameKind, type FrameHeader } from '../../src/protocol/frame';
import { JsAggregator } from '../../src/server/adapters/workers/js-aggregator';
import { ArrivalFolds } from '../../src/server/services/arrival-fold';
import { randomInputs } from '../support/random';

const P = 1003;

function frame(values: Float32Array, nodeId: number, samples: number, round = 1): { header: FrameHeader; bytes: Uint8Array } {
  const bytes = encodeFrame({ kind: FrameKind.Gradient, sessionId: 1, round, nodeId, attempt: 7, modelVersion: 0, sampleCount: samples, trainLoss: 0.5 }, values);
  return { header: decodeHeader(bytes), bytes };
}

function ingest(folds: ArrivalFolds, f: { header: FrameHeader; bytes: Uint8Array }) {
  const event = folds.ingest(f.header.nodeId, f.header, f.bytes, 0);
  if (event.type !== 'update-ingested') throw new Error(`not ingested: ${JSON.stringify(event)}`);
  return event.slot;
}

function referenceMean(inputs: Float32Array[], weights: number[]): Float64Array {
  const total = weights.reduce((a, b) => a + b, 0);
  const out = new Float64Array(P);
  inputs.forEach((x, j) => x.forEach((v, i) => (out[i] += (v * weights[j]) / total)));
  return out;
}

describe('ArrivalFolds', () => {
  it('folds accepted updates, drops refused ones bit for bit, and takes the closing update in', async () => {
    const [a, b, c, d] = randomInputs(4, P, 5);
    const folds = new ArrivalFolds(new JsAggregator(1 << 30));
    const ta = ingest(folds, frame(a, 1, 64));
    folds.settle(ta);
    // The engine refuses b (say, its norm): release-slots during the step, before settle.
    const tb = ingest(folds, frame(b, 2, 64));
    folds.release(tb);
    folds.settle(tb);
    const tc = ingest(folds, frame(c, 3, 32));
    folds.settle(tc);
    // d closes the round in the step that accepts it: the aggregate effect runs before settle.
    const td = ingest(folds, frame(d, 4, 128));
    const expected = referenceMean([a, c, d], [64, 32, 128]);
    // Audits read the round's accepted updates (the closing one still pending) from the received payloads.
    expect(Array.from(folds.slotOf(td)!.view)).toEqual(Array.from(d));
    expect(Array.from(folds.slotOf(ta)!.view)).toEqual(Array.from(a));
    expect(folds.slotOf(tb)).toBeUndefined();
    const { aggregate: mean, distances } = await folds.aggregate(1, [ta, tc, td], { rule: 'weighted-mean', weights: [64, 32, 128] });
    folds.settle(td);
    // Distances from the aggregate, estimated from the sketches, in the order asked.
    expect(distances).toHaveLength(3);
    [a, c, d].forEach((x, j) => {
      let exact = 0;
      for (let i = 0; i < P; i++) exact += (x[i] - expected[i]) ** 2;
      expect(Math.abs(distances[j] - Math.sqrt(exact)) / Math.sqrt(exact)).toBeLessThan(0.25);
    });
    let worst = 0;
    for (let i = 0; i < P; i++) worst = Math.max(worst, Math.abs(mean[i] - expected[i]));
    expect(worst).toBeLessThan(1e-5);
  });

  it('reports a bad checksum or NaN as the ingest failure, and the sum never sees them', async () => {
    const [a, b] = randomInputs(2, P, 6);
    const folds = new ArrivalFolds(new JsAggregator(1 << 30));
    const corrupt = frame(b, 2, 64);
    corrupt.bytes[100] ^= 1;
    expect(folds.ingest(2, corrupt.header, corrupt.bytes, 0)).toMatchObject({ type: 'update-ingest-failed', code: 'CHECKSUM' });
    const nan = b.slice();
    nan[3] = Number.NaN;
    const bad = frame(nan, 2, 64);
    expect(folds.ingest(2, bad.header, bad.bytes, 0)).toMatchObject({ type: 'update-ingest-failed', code: 'NON_FINITE' });
    const ta = ingest(folds, frame(a, 1, 64));
    folds.settle(ta);
    const { aggregate: mean } = await folds.aggregate(1, [ta], { rule: 'weighted-mean', weights: [64] });
    expect(Array.from(mean)).toEqual(Array.from(a));
  });

  it('clips at the close: an update over the limit is scaled down in the sum from its received bytes', async () => {
    const [a, b, c] = randomInputs(3, P, 10);
    const folds = new ArrivalFolds(new JsAggregator(1 << 30));
    const tokens = [a, b, c].map((x, j) => {
      const t = ingest(folds, frame(x, j + 1, 64));
      if (j < 2) folds.settle(t);
      return t;
    });
    const { aggregate } = await folds.aggregate(1, tokens, { rule: 'weighted-mean', weights: [64, 64, 64] }, [1, 0.5, 1]);
    const expected = referenceMean([a, b.map((v) => v * 0.5), c], [64, 64, 64]);
    let worst = 0;
    for (let i = 0; i < P; i++) worst = Math.max(worst, Math.abs(aggregate[i] - expected[i]));
    expect(worst).toBeLessThan(1e-5);
  });

  it('clips the update that closed the round (still pending when the round aggregates), as a single-node round does', async () => {
    const [a, b] = randomInputs(2, P, 12);
    const folds = new ArrivalFolds(new JsAggregator(1 << 30));
    const ta = ingest(folds, frame(a, 1, 64));
    folds.settle(ta);
    const tb = ingest(folds, frame(b, 2, 32)); // not settled: the engine step that accepted it is the close
    const { aggregate } = await folds.aggregate(1, [ta, tb], { rule: 'weighted-mean', weights: [64, 32] }, [1, 0.25]);
    const expected = referenceMean([a, b.map((v) => v * 0.25)], [64, 32]);
    let worst = 0;
    for (let i = 0; i < P; i++) worst = Math.max(worst, Math.abs(aggregate[i] - expected[i]));
    expect(worst).toBeLessThan(1e-5);
    // Alone in its round, clipped: the mean is the update scaled.
    const single = new ArrivalFolds(new JsAggregator(1 << 30));
    const only = ingest(single, frame(a, 1, 64));
    const { aggregate: alone } = await single.aggregate(1, [only], { rule: 'weighted-mean', weights: [64] }, [0.5]);
    let worstAlone = 0;
    for (let i = 0; i < P; i++) worstAlone = Math.max(worstAlone, Math.abs(alone[i] - a[i] * 0.5));
    expect(worstAlone).toBeLessThan(1e-6);
  });

  it('refuses a mean over another set of updates than the sum holds, and a robust plan over folded updates', async () => {
    const [a, b] = randomInputs(2, P, 7);
    const folds = new ArrivalFolds(new JsAggregator(1 << 30));
    const ta = ingest(folds, frame(a, 1, 64));
    folds.settle(ta);
    const tb = ingest(folds, frame(b, 2, 64));
    folds.release(tb);
    await expect(folds.aggregate(1, [ta, tb], { rule: 'weighted-mean', weights: [64, 64] })).rejects.toThrow(/refusing to apply/);
    await expect(folds.aggregate(1, [ta], { rule: 'median' })).rejects.toThrow(/folded on arrival/);
  });

  it('drops a fold whose engine step never completed (never settled) when the next update arrives', async () => {
    const [a, b] = randomInputs(2, P, 9);
    const folds = new ArrivalFolds(new JsAggregator(1 << 30));
    ingest(folds, frame(a, 1, 64));
    const tb = ingest(folds, frame(b, 2, 64));
    folds.settle(tb);
    const { aggregate: mean } = await folds.aggregate(1, [tb], { rule: 'weighted-mean', weights: [64] });
    expect(Array.from(mean)).toEqual(Array.from(b));
  });

  it('starts a fresh sum for a new round: updates of the old one are gone with it', async () => {
    const [a, b] = randomInputs(2, P, 8);
    const folds = new ArrivalFolds(new JsAggregator(1 << 30));
    folds.settle(ingest(folds, frame(a, 1, 64, 1)));
    const tb = ingest(folds, frame(b, 1, 64, 2));
    folds.settle(tb);
    const { aggregate: mean } = await folds.aggregate(2, [tb], { rule: 'weighted-mean', weights: [64] });
    expect(Array.from(mean)).toEqual(Array.from(b));
  });
});
