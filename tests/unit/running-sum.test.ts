// The fused ingest fold (fold.wat through WasmRunningSum, and its JS twin) against a float64 reference: the mean it
// computes, the checks it makes on the way (checksum, NaN/Inf, norm), and the promise that a discarded fold
// leaves the sum exactly as it was.
import { describe, expect, it } from 'vitest';
import { checksum32, inspectPayload } from '../../src/protocol/frame';
import type { RunningSum } from '../../src/server/core/ports';
import { SharedArena } from '../../src/server/adapters/workers/arena';
import { FOLD_CHUNK_BYTES, instantiateFold, JsRunningSum, WasmRunningSum } from '../../src/server/adapters/workers/running-sum';
import { randomInputs, rng } from '../support/random';

function wasmSum(paramCount: number, seed?: number): WasmRunningSum {
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 4096, shared: true });
  return new WasmRunningSum(new SharedArena(memory, 4096 * 65536), instantiateFold(memory), paramCount, seed);
}

const backends: [string, (p: number) => RunningSum][] = [
  ['wasm', wasmSum],
  ['js', (p) => new JsRunningSum(p)],
];

/** The bytes of values as a frame's payload would carry them, at a chosen byte offset (ws slices at any offset). */
function bytesOf(values: Float32Array, offset = 0): Uint8Array {
  const buffer = new Uint8Array(values.byteLength + offset);
  buffer.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offset);
  return buffer.subarray(offset);
}

function reference(inputs: readonly Float32Array[], weights: readonly number[]): Float64Array {
  const out = new Float64Array(inputs[0].length);
  const total = weights.reduce((a, b) => a + b, 0);
  inputs.forEach((x, j) => {
    for (let i = 0; i < x.length; i++) out[i] += (weights[j] * x[i]) / total;
  });
  return out;
}

/** Each value within 1e-6 of the magnitude of its terms (inputs are in [-10, 10)). */
function expectClose(actual: Float32Array, expected: Float64Array): void {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThan(10 * 1e-6 * 4);
}

describe.each(backends)('running sum (%s)', (_name, open) => {
  // Lengths: under one chunk, several chunks plus a tail that is not a multiple of 4.
  it.each([1, 7, 4099, FOLD_CHUNK_BYTES / 4 * 3 + 5])('mean of N updates of P = %i matches the float64 reference', (p) => {
    const inputs = randomInputs(6, p, p);
    const next = rng(p + 1);
    const weights = inputs.map(() => 1 + Math.floor(next() * 200));
    const sum = open(p);
    inputs.forEach((x, j) => {
      const stats = sum.fold(bytesOf(x, j % 4), weights[j]);
      expect(stats).toEqual({ ...inspectPayload(x), sumSquares: expect.closeTo(inspectPayload(x).sumSquares, 3) });
      expect(stats.checksum).toBe(checksum32(new Uint32Array(x.buffer)));
      sum.accept();
    });
    expect(sum.accepted).toBe(6);
    expect(sum.totalWeight).toBe(weights.reduce((a, b) => a + b, 0));
    const mean = sum.mean();
    expectClose(mean, reference(inputs, weights));
    // Into a caller's buffer (the resident model's gradient buffer): the same bits, in that very array.
    const target = new Float32Array(p).fill(Number.NaN);
    expect(sum.mean(target)).toBe(target);
    expect(Buffer.from(target.buffer).equals(Buffer.from(mean.buffer, mean.byteOffset, mean.byteLength))).toBe(true);
    expect(() => sum.mean(new Float32Array(p + 1))).toThrow(/target holds/);
    sum.close();
  });

  it('counts NaN and Inf, and a discarded fold (NaN, or any refused update) leaves the sum bit for bit as it was', () => {
    const p = FOLD_CHUNK_BYTES / 4 + 3;
    const [a, b, c] = randomInputs(3, p, 9);
    const poisoned = b.slice();
    poisoned[5] = Number.NaN;
    poisoned[p - 1] = Number.POSITIVE_INFINITY;
    const huge = c.map((v) => v * 1e30);

    const clean = open(p);
    for (const x of [a, c]) {
      clean.fold(bytesOf(x), 3);
      clean.accept();
    }
    const dirty = open(p);
    dirty.fold(bytesOf(a), 3);
    dirty.accept();
    const stats = dirty.fold(bytesOf(poisoned, 2), 5);
    expect(stats.nonFinite).toBe(2);
    dirty.discard();
    // A finite update refused for its norm (the engine's decision, after the pass): discarded the same way.
    expect(Math.sqrt(dirty.fold(bytesOf(huge), 7).sumSquares)).toBeGreaterThan(1e30);
    dirty.discard();
    dirty.fold(bytesOf(c), 3);
    dirty.accept();
    expect(dirty.accepted).toBe(2);
    expect(dirty.totalWeight).toBe(6);
    expect(Buffer.from(dirty.mean().buffer).equals(Buffer.from(clean.mean().buffer))).toBe(true);
  });

  it('a discarded first fold leaves the next one first (nothing to add it to)', () => {
    const [a, b] = randomInputs(2, 33, 4);
    const sum = open(33);
    sum.fold(bytesOf(a), 1);
    sum.discard();
    sum.fold(bytesOf(b), 2);
    sum.accept();
    expect(Array.from(sum.mean())).toEqual(Array.from(b));
  });

  it('refuses misuse: a second fold before the verdict, a mean while one is pending, wrong sizes and weights', () => {
    const [a] = randomInputs(1, 8, 2);
    const sum = open(8);
    expect(() => sum.mean()).toThrow(/no mean/);
    expect(() => sum.fold(bytesOf(a).subarray(4), 1)).toThrow(/bytes/);
    expect(() => sum.fold(bytesOf(a), -1)).toThrow(/weight/);
    expect(() => sum.fold(bytesOf(a), Number.NaN)).toThrow(/weight/);
    sum.fold(bytesOf(a), 1);
    expect(() => sum.fold(bytesOf(a), 1)).toThrow(/neither accepted nor discarded/);
    expect(() => sum.mean()).toThrow(/pending/);
    sum.accept();
    expect(() => sum.accept()).toThrow(/no fold/);
  });
});

it('the wasm kernel and the JS reference give the same bits (mean and distance sketches)', () => {
  const p = FOLD_CHUNK_BYTES / 4 * 2 + 1;
  const inputs = randomInputs(5, p, 77);
  const sums = [wasmSum(p, 12345), new JsRunningSum(p, 12345)];
  for (const sum of sums) {
    inputs.forEach((x, j) => {
      sum.fold(bytesOf(x, j % 3), 10 + j);
      sum.accept();
    });
  }
  const [wasm, js] = sums.map((s) => Buffer.from(s.mean().buffer));
  expect(wasm.equals(js)).toBe(true);
  expect(sums[0].distances()).toEqual(sums[1].distances());
});

describe.each(backends)('distance sketch (%s)', (_name, open) => {
  /** Exact L2 distance of each input from the weighted mean, in float64. */
  function exactDistances(inputs: Float32Array[], weights: number[]): number[] {
    const mean = reference(inputs, weights);
    return inputs.map((x) => Math.sqrt(x.reduce((acc, v, i) => acc + (v - mean[i]) ** 2, 0)));
  }

  it('estimates each update distance from the mean within 10% at P = 300k, and finds the outlier', () => {
    const p = 300_007;
    const inputs = randomInputs(8, p, 31);
    // One update far from the rest (a scaled, sign-flipped copy of another), as a Byzantine node would send.
    inputs[5] = inputs[2].map((v) => -8 * v);
    const weights = inputs.map((_, j) => 50 + 10 * j);
    const sum = open(p);
    for (const [j, x] of inputs.entries()) {
      sum.fold(bytesOf(x), weights[j]);
      sum.accept();
    }
    const estimated = sum.distances();
    const exact = exactDistances(inputs, weights);
    estimated.forEach((d, j) => expect(Math.abs(d - exact[j]) / exact[j]).toBeLessThan(0.1));
    expect(estimated.indexOf(Math.max(...estimated))).toBe(5);
    sum.close();
  });

  it('rescale (norm clipping at the close) scales one update in the sum and in its sketch, not its weight', () => {
    const p = 50_003;
    const inputs = randomInputs(4, p, 33);
    const weights = [10, 20, 30, 40];
    const sum = open(p);
    inputs.forEach((x, j) => {
      sum.fold(bytesOf(x, j % 4), weights[j]);
      sum.accept();
    });
    sum.rescale(2, bytesOf(inputs[2], 1), 0.25);
    const clipped = inputs.map((x, j) => (j === 2 ? x.map((v) => v * 0.25) : x));
    expectClose(sum.mean(), reference(clipped, weights));
    const exact = exactDistances(clipped, weights);
    sum.distances().forEach((d, j) => expect(Math.abs(d - exact[j]) / exact[j]).toBeLessThan(0.15));
    expect(() => sum.rescale(9, bytesOf(inputs[0]), 0.5)).toThrow(/no accepted update/);
    expect(() => sum.rescale(0, bytesOf(inputs[0]), 2)).toThrow(/scale/);
    sum.close();
  });

  it('a discarded update leaves no sketch behind; distances follow the accept order', () => {
    const p = 10_000;
    const [a, b, c] = randomInputs(3, p, 32);
    const sum = open(p);
    sum.fold(bytesOf(a), 1);
    sum.accept();
    sum.fold(bytesOf(b.map((v) => v * 1000)), 1);
    sum.discard();
    sum.fold(bytesOf(c), 1);
    sum.accept();
    const exact = exactDistances([a, c], [1, 1]);
    const estimated = sum.distances();
    expect(estimated).toHaveLength(2);
    estimated.forEach((d, j) => expect(Math.abs(d - exact[j]) / exact[j]).toBeLessThan(0.15));
  });
});
