import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  coordinateMedianInto,
  normalizeWeights,
  trimmedMeanInto,
  weightedMeanInto,
} from '../../src/server/core/aggregation';
import {
  compileWeightedSum,
  instantiateWeightedSum,
  KERNEL_ALIGN_BYTES,
  TABLE_ENTRY_BYTES,
} from '../../src/workers/kernels/weighted-sum-kernel';
import { randomInputs, rng } from '../support/random';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Sample counts: uneven, one of them zero when there are several inputs. */
function unevenWeights(n: number, seed: number): number[] {
  const next = rng(seed);
  return Array.from({ length: n }, (_, i) => (n > 2 && i === 1 ? 0 : 1 + Math.floor(next() * 1000)));
}

/**
 * Float64 reference, and the check used throughout: each value within 1e-6 of the magnitude of its terms
 * (sum_i |w_i x_i|, with normalised weights). Relative to the value itself would be ill-posed where terms cancel.
 */
function expectCloseToReference(actual: Float32Array, inputs: readonly Float32Array[], weights: readonly number[]): void {
  const total = weights.reduce((a, b) => a + b, 0);
  expect(actual.length).toBe(inputs[0].length);
  let worst = 0;
  for (let k = 0; k < actual.length; k++) {
    let sum = 0;
    let scale = 0;
    for (let i = 0; i < inputs.length; i++) {
      const term = (weights[i] / total) * inputs[i][k];
      sum += term;
      scale += Math.abs(term);
    }
    const err = Math.abs(actual[k] - sum) / Math.max(scale, Number.MIN_VALUE);
    if (err > worst) worst = err;
  }
  expect(worst).toBeLessThan(1e-6);
}

describe('normalizeWeights', () => {
  it('scales weights to sum to 1', () => {
    const w = normalizeWeights([1, 3, 0, 4]);
    expect(w).toEqual([0.125, 0.375, 0, 0.5]);
  });

  it.each([
    [[1, -1], /must not be negative/],
    [[1, Number.NaN], /must be finite/],
    [[1, Number.POSITIVE_INFINITY], /must be finite/],
    [[0, 0, 0], /sum to 0/],
    [[], /no weights/],
    [[Number.MAX_VALUE, Number.MAX_VALUE], /overflow/],
  ])('rejects %j', (weights, message) => {
    expect(() => normalizeWeights(weights)).toThrow(message);
  });
});

describe('weightedMeanInto', () => {
  for (const n of [1, 3, 4, 5, 10]) {
    for (const p of [1, 5, 17, 1003, 4099]) {
      it(`matches the float64 reference for N=${n}, P=${p}`, () => {
        const inputs = randomInputs(n, p, n * 7919 + p);
        const weights = unevenWeights(n, p + n);
        const out = weightedMeanInto(new Float32Array(p), inputs, weights);
        expectCloseToReference(out, inputs, weights);
      });
    }
  }

  it('overwrites whatever the output held', () => {
    const out = new Float32Array([9, 9, 9]);
    weightedMeanInto(out, [new Float32Array([1, 2, 3]), new Float32Array([3, 4, 5])], [1, 1]);
    expect(Array.from(out)).toEqual([2, 3, 4]);
  });

  it('rejects bad weights and mismatched shapes', () => {
    const a = new Float32Array(4);
    expect(() => weightedMeanInto(new Float32Array(4), [a, a], [1, -2])).toThrow(/negative/);
    expect(() => weightedMeanInto(new Float32Array(4), [a, a], [0, 0])).toThrow(/sum to 0/);
    expect(() => weightedMeanInto(new Float32Array(4), [a, a], [1])).toThrow(/2 inputs but 1 weights/);
    expect(() => weightedMeanInto(new Float32Array(4), [a, new Float32Array(3)], [1, 1])).toThrow(/input 1 has 3 values/);
    expect(() => weightedMeanInto(new Float32Array(4), [], [])).toThrow(/no inputs/);
  });
});

describe('trimmedMeanInto', () => {
  const columns = (rows: number[][]): Float32Array[] => rows.map((r) => Float32Array.from(r));

  it('drops floor(f * N) values at each end of every coordinate', () => {
    // Coordinate 0: 1 2 3 4 100 (one outlier); coordinate 1: -50 0 0 1 1.
    const inputs = columns([[1, 0], [100, -50], [3, 1], [2, 0], [4, 1]]);
    expect(Array.from(trimmedMeanInto(new Float32Array(2), inputs, 0.2))).toEqual([3, 1 / 3].map(Math.fround));
    // 0.1 * 5 rounds down to 0: the plain mean.
    expect(Array.from(trimmedMeanInto(new Float32Array(2), inputs, 0.1))).toEqual([22, -48 / 5].map(Math.fround));
    expect(Array.from(trimmedMeanInto(new Float32Array(2), inputs, 0.4))).toEqual([3, 0]);
  });

  it('rejects trim fractions outside [0, 0.5)', () => {
    const inputs = columns([[1], [2]]);
    expect(() => trimmedMeanInto(new Float32Array(1), inputs, 0.5)).toThrow(/\[0, 0.5\)/);
    expect(() => trimmedMeanInto(new Float32Array(1), inputs, -0.1)).toThrow(/\[0, 0.5\)/);
    expect(() => trimmedMeanInto(new Float32Array(1), inputs, Number.NaN)).toThrow(/\[0, 0.5\)/);
  });
});

describe('coordinateMedianInto', () => {
  it('takes the middle value for odd N and the mean of the middle two for even N', () => {
    const odd = [[3, -1], [1, 7], [2, 5]].map((r) => Float32Array.from(r));
    expect(Array.from(coordinateMedianInto(new Float32Array(2), odd))).toEqual([2, 5]);
    const even = [[4, 0], [1, 10], [3, -10], [2, 1]].map((r) => Float32Array.from(r));
    expect(Array.from(coordinateMedianInto(new Float32Array(2), even))).toEqual([2.5, 0.5]);
    expect(Array.from(coordinateMedianInto(new Float32Array(1), [Float32Array.of(42)]))).toEqual([42]);
  });

  it('ignores one wild value that a mean would follow', () => {
    const inputs = [[1], [1.1], [0.9], [1e30]].map((r) => Float32Array.from(r));
    expect(coordinateMedianInto(new Float32Array(1), inputs)[0]).toBeCloseTo(1.05, 6);
  });
});

describe('weighted-sum.wasm', () => {
  it('is what scripts/build-kernels.mjs assembles from the committed .wat', () => {
    const result = spawnSync(process.execPath, ['scripts/build-kernels.mjs', '--check'], { cwd: repoRoot, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('computes the weighted sum on one thread, any N, lengths not a multiple of 4 or 16, any range start', () => {
    const memory = new WebAssembly.Memory({ initial: 256, maximum: 256, shared: true });
    const kernel = instantiateWeightedSum(compileWeightedSum(), memory);
    const pad = (floats: number): number => Math.ceil((floats * 4) / KERNEL_ALIGN_BYTES) * KERNEL_ALIGN_BYTES;
    for (const n of [1, 2, 3, 4, 5, 7, 10]) {
      for (const p of [1, 5, 17, 4099, 150_001]) {
        let top = KERNEL_ALIGN_BYTES;
        const table = top;
        top += pad(n * 2);
        const inputs = randomInputs(n, p, n * 31 + p);
        const weights = unevenWeights(n, p);
        const total = weights.reduce((a, b) => a + b, 0);
        const entries = new DataView(memory.buffer, table, n * TABLE_ENTRY_BYTES);
        inputs.forEach((input, j) => {
          new Float32Array(memory.buffer, top, p).set(input);
          entries.setUint32(j * TABLE_ENTRY_BYTES, top, true);
          entries.setFloat32(j * TABLE_ENTRY_BYTES + 4, weights[j] / total, true);
          top += pad(p);
        });
        const out = top;
        const outView = new Float32Array(memory.buffer, out, p);
        outView.fill(Number.NaN);
        // Two ranges, the second starting on a 16-float boundary, as the pool splits work between workers.
        const split = p > 16 ? Math.floor(p / 2 / 16) * 16 : p;
        kernel.weighted_sum(out, table, n, 0, split);
        if (split < p) kernel.weighted_sum(out, table, n, split, p - split);
        expectCloseToReference(outView, inputs, weights);
      }
    }
  });

  it('read_sum adds every float it is given', () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const kernel = instantiateWeightedSum(compileWeightedSum(), memory);
    new Float32Array(memory.buffer, 64, 1000).fill(0.5);
    expect(kernel.read_sum(64, 1000)).toBe(500);
  });
});
