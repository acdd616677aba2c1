// The robust rules: the float64 references in core/aggregation.ts against brute force, the comparator networks
// the SIMD kernel runs, and robust.wasm itself on one thread against the references (ties, +-0, tails, padding).
import { describe, expect, it } from 'vitest';
import {
  aggregateReference,
  coordinateMedianInto,
  multiKrumSelect,
  pairwiseSquaredDistances,
  squaredDistancesFrom,
  trimmedMeanCountInto,
} from '../../src/server/core/aggregation';
import type { AggregationPlan } from '../../src/server/core/ports';
import {
  batcherNetwork,
  compileRobust,
  COMPARATOR_BYTES,
  medianPlan,
  pruneNetwork,
  ROBUST_ROW_BYTES,
  trimmedMeanPlan,
  trimNetwork,
  type Comparator,
} from '../../src/workers/kernels/robust-kernel';
import { instantiateRobust } from '../../src/workers/kernels/robust-kernel';
import { KERNEL_ALIGN_BYTES, TABLE_ENTRY_BYTES } from '../../src/workers/kernels/weighted-sum-kernel';
import { randomInputs, rng } from '../support/random';

/** Many ties and both zeros: values drawn from {-2, -1, -0, +0, 1, 2}. */
function tiedInputs(n: number, p: number, seed: number): Float32Array[] {
  const next = rng(seed);
  const pool = [-2, -1, -0, 0, 1, 2];
  return Array.from({ length: n }, () => Float32Array.from({ length: p }, () => pool[Math.floor(next() * pool.length)]));
}

/** Brute force in float64: sort each column, keep ranks [lo, hi), average. */
function bruteRanks(inputs: readonly Float32Array[], lo: number, hi: number): Float64Array {
  const p = inputs[0].length;
  const out = new Float64Array(p);
  for (let k = 0; k < p; k++) {
    const column = inputs.map((x) => x[k]).sort((a, b) => a - b);
    let sum = 0;
    for (let r = lo; r < hi; r++) sum += column[r];
    out[k] = sum / (hi - lo);
  }
  return out;
}

/** Equal as numbers (-0 == +0), and within one float32 rounding of the float64 value. */
function expectRounded(actual: Float32Array, exact: Float64Array): void {
  expect(actual.length).toBe(exact.length);
  for (let k = 0; k < exact.length; k++) {
    if (actual[k] !== Math.fround(exact[k])) {
      throw new Error(`value ${k}: got ${actual[k]}, the float64 reference rounds to ${Math.fround(exact[k])} (${exact[k]})`);
    }
  }
}

describe('robust references (core/aggregation.ts)', () => {
  it('trimmedMeanCountInto and coordinateMedianInto equal a float64 sort, with ties and both zeros', () => {
    for (const n of [1, 2, 3, 4, 5, 10, 17]) {
      for (const make of [randomInputs, tiedInputs]) {
        const inputs = make(n, 257, n * 13);
        const mid = n >> 1;
        expectRounded(coordinateMedianInto(new Float32Array(257), inputs), bruteRanks(inputs, n % 2 ? mid : mid - 1, mid + 1));
        for (let trim = 0; 2 * trim < n; trim++) {
          expectRounded(trimmedMeanCountInto(new Float32Array(257), inputs, trim), bruteRanks(inputs, trim, n - trim));
        }
      }
    }
  });

  it('rejects a trim that leaves nothing', () => {
    const inputs = randomInputs(4, 3, 1);
    expect(() => trimmedMeanCountInto(new Float32Array(3), inputs, 2)).toThrow(/0 <= 2 \* trim < 4/);
    expect(() => trimmedMeanCountInto(new Float32Array(3), inputs, 0.5)).toThrow(/integer/);
  });

  it('multiKrumSelect scores by the N - f - 2 nearest and keeps the m lowest, lower index first on ties', () => {
    // Five points on a line at 0, 1, 2, 3 and 100; f = 1: each scores its 2 nearest squared distances.
    const points = [0, 1, 2, 3, 100].map((x) => Float32Array.of(x));
    const squared = pairwiseSquaredDistances(points);
    expect(squared[0 * 5 + 4]).toBe(10_000);
    expect(squared[4 * 5 + 0]).toBe(10_000);
    const { kept, scores } = multiKrumSelect(squared, 5, 1, 3);
    expect(Array.from(scores)).toEqual([1 + 4, 1 + 1, 1 + 1, 1 + 4, 97 ** 2 + 98 ** 2]);
    expect(kept).toEqual([0, 1, 2]); // 1 and 2 score 2; 0 and 3 tie at 5: the lower index wins
    expect(() => multiKrumSelect(squared, 5, 2, 1)).toThrow(/N > 2f \+ 2/);
    expect(() => multiKrumSelect(squared, 5, 1, 5)).toThrow(/1 <= m <= N - f/);
  });

  it('aggregateReference measures every update against the aggregate', () => {
    const inputs = randomInputs(6, 33, 5);
    for (const plan of [
      { rule: 'weighted-mean', weights: [1, 2, 3, 4, 5, 6] },
      { rule: 'trimmed-mean', trim: 2 },
      { rule: 'median' },
      { rule: 'multi-krum', f: 1, m: 3 },
    ] as AggregationPlan[]) {
      const result = aggregateReference(inputs, plan);
      const squared = squaredDistancesFrom(inputs, result.aggregate);
      expect(Array.from(result.distances)).toEqual(Array.from(squared, Math.sqrt));
      expect(result.kept !== undefined).toBe(plan.rule === 'multi-krum');
    }
    expect(() => aggregateReference(inputs, { rule: 'trimmed-mean', trim: 3 })).toThrow(/trim is 3/);
    expect(() => aggregateReference(inputs, { rule: 'weighted-mean', weights: [1] })).toThrow(/6 slots but 1 weights/);
    expect(() => aggregateReference([], { rule: 'median' })).toThrow(/no slots/);
  });
});

describe('breakdown points (the reference; the kernels are held to the same in the integration tests)', () => {
  for (const n of [3, 5, 10, 11]) {
    it(`N=${n}: with floor((N-1)/2) arbitrary updates the median stays within the honest range, and so does a trimmed mean that trims as many`, () => {
      const f = Math.floor((n - 1) / 2);
      const p = 64;
      const honest = randomInputs(n - f, p, n);
      const next = rng(n * 7);
      const wild = Array.from({ length: f }, (_, j) =>
        Float32Array.from({ length: p }, () => [3e38, -3e38, 1e6, -1e6][(j + Math.floor(next() * 4)) % 4]),
      );
      const inputs = [...wild.slice(0, 1), ...honest, ...wild.slice(1)];
      for (const result of [coordinateMedianInto(new Float32Array(p), inputs), trimmedMeanCountInto(new Float32Array(p), inputs, f)]) {
        for (let k = 0; k < p; k++) {
          const column = honest.map((h) => h[k]);
          expect(result[k]).toBeGreaterThanOrEqual(Math.min(...column));
          expect(result[k]).toBeLessThanOrEqual(Math.max(...column));
        }
      }
    });
  }
});

describe('comparator networks', () => {
  const run = (network: readonly Comparator[], values: number[]): number[] => {
    const w = [...values];
    for (const [a, b] of network) if (w[b] < w[a]) [w[a], w[b]] = [w[b], w[a]];
    return w;
  };

  it("Batcher's network sorts every 0-1 input (hence every input) for N up to 14", () => {
    for (let n = 1; n <= 14; n++) {
      const network = batcherNetwork(n);
      for (let bits = 0; bits < 1 << n; bits++) {
        const values = Array.from({ length: n }, (_, i) => (bits >> i) & 1);
        const sorted = run(network, values);
        for (let i = 1; i < n; i++) if (sorted[i - 1] > sorted[i]) throw new Error(`N=${n} leaves ${values} as ${sorted}`);
      }
    }
  });

  it('the pruned and trimming networks put the right values on the ranks they promise, for N up to 40', () => {
    const next = rng(3);
    for (let n = 1; n <= 40; n++) {
      const plans = [medianPlan(n), ...Array.from({ length: Math.ceil(n / 2) }, (_, trim) => trimmedMeanPlan(n, trim))];
      for (let trial = 0; trial < 50; trial++) {
        const values = Array.from({ length: n }, () => Math.floor(next() * 6));
        const sorted = [...values].sort((a, b) => a - b);
        for (const plan of plans) {
          const out = run(plan.network, values).slice(plan.lo, plan.hi).sort((a, b) => a - b);
          expect(out).toEqual(sorted.slice(plan.lo, plan.hi));
        }
      }
    }
  });

  it('picks the shorter network: bubbles for a small trim, and prunes the sort for the median', () => {
    expect(trimmedMeanPlan(10, 1).network).toEqual(trimNetwork(10, 1));
    expect(trimNetwork(10, 1)).toHaveLength(17);
    expect(medianPlan(10).network.length).toBeLessThan(batcherNetwork(10).length);
    expect(pruneNetwork(batcherNetwork(8), 0, 8)).toEqual(batcherNetwork(8));
    expect(trimmedMeanPlan(7, 0).network).toEqual([]);
  });
});

describe('robust.wasm on one thread', () => {
  /** Lays inputs out as the pool does (64-byte aligned, padding filled with NaN to prove it never counts). */
  function setup(inputs: readonly Float32Array[]) {
    const n = inputs.length;
    const p = inputs[0].length;
    const pad = (bytes: number): number => Math.ceil(bytes / KERNEL_ALIGN_BYTES) * KERNEL_ALIGN_BYTES;
    const need = KERNEL_ALIGN_BYTES + pad(n * 8) + (n + 1) * pad(p * 4) + n * ROBUST_ROW_BYTES + pad(n * n * 8) + pad(n * 8) + 4096 * COMPARATOR_BYTES;
    const memory = new WebAssembly.Memory({ initial: Math.ceil(need / 65536), maximum: 65536, shared: true });
    const kernel = instantiateRobust(compileRobust(), memory);
    let top = KERNEL_ALIGN_BYTES;
    const take = (bytes: number): number => {
      const at = top;
      top += pad(bytes);
      return at;
    };
    const table = take(n * TABLE_ENTRY_BYTES);
    const entries = new DataView(memory.buffer, table, n * TABLE_ENTRY_BYTES);
    inputs.forEach((input, j) => {
      const at = take(p * 4);
      new Float32Array(memory.buffer, at, pad(p * 4) / 4).fill(Number.NaN);
      new Float32Array(memory.buffer, at, p).set(input);
      entries.setUint32(j * TABLE_ENTRY_BYTES, at, true);
    });
    const out = take(p * 4);
    const scratch = take(n * ROBUST_ROW_BYTES);
    const matrix = take(n * n * 8);
    const dist = take(n * 8);
    const net = take(4096 * COMPARATOR_BYTES);
    /** Runs over [0, p) in two ranges (split on a 16-float boundary, as between two workers). */
    const ranges = (fn: (first: number, count: number) => void): void => {
      const split = p > 16 ? Math.floor(p / 2 / 16) * 16 : p;
      fn(0, split);
      if (split < p) fn(split, p - split);
    };
    return {
      rank(plan: { lo: number; hi: number; div: number; network: readonly Comparator[] }) {
        const words = new Int32Array(memory.buffer, net, plan.network.length * 2);
        plan.network.forEach(([a, b], c) => words.set([a * ROBUST_ROW_BYTES, b * ROBUST_ROW_BYTES], 2 * c));
        new Float32Array(memory.buffer, out, pad(p * 4) / 4).fill(Number.NaN);
        new Float64Array(memory.buffer, dist, n).fill(0);
        ranges((first, count) => kernel.robust(table, n, first, count, net, plan.network.length, scratch, out, plan.lo, plan.hi, plan.div, dist));
        return { aggregate: new Float32Array(memory.buffer, out, p).slice(), squared: new Float64Array(memory.buffer, dist, n).slice() };
      },
      /** weighted_mean over a subset (the first `wn` inputs, weights written into the table), distances for all. */
      mean(weights: readonly number[]) {
        weights.forEach((w, j) => entries.setFloat32(j * TABLE_ENTRY_BYTES + 4, w, true));
        new Float32Array(memory.buffer, out, pad(p * 4) / 4).fill(Number.NaN);
        new Float64Array(memory.buffer, dist, n).fill(0);
        ranges((first, count) => kernel.weighted_mean(table, weights.length, table, n, first, count, out, dist));
        return { aggregate: new Float32Array(memory.buffer, out, p).slice(), squared: new Float64Array(memory.buffer, dist, n).slice() };
      },
      distancesFrom(center: Float32Array) {
        new Float32Array(memory.buffer, out, p).set(center);
        new Float64Array(memory.buffer, dist, n).fill(0);
        ranges((first, count) => kernel.distances(table, n, first, count, out, dist));
        return new Float64Array(memory.buffer, dist, n).slice();
      },
      pairwise() {
        new Float64Array(memory.buffer, matrix, n * n).fill(0);
        ranges((first, count) => kernel.pairwise(table, n, first, count, matrix));
        return new Float64Array(memory.buffer, matrix, n * n).slice();
      },
    };
  }

  function expectRelative(actual: Float64Array, expected: Float64Array, tolerance: number): void {
    for (let i = 0; i < expected.length; i++) {
      expect(Math.abs(actual[i] - expected[i])).toBeLessThanOrEqual(tolerance * Math.max(expected[i], 1e-30));
    }
  }

  for (const n of [1, 2, 3, 5, 10, 17, 33]) {
    for (const p of [1, 5, 17, 259, 4099]) {
      it(`median and every trimmed mean equal the references for N=${n}, P=${p} (random, and tied with both zeros)`, () => {
        for (const inputs of [randomInputs(n, p, n * 101 + p), tiedInputs(n, p, n + p)]) {
          const k = setup(inputs);
          const median = k.rank(medianPlan(n));
          expectRounded(median.aggregate, Float64Array.from(coordinateMedianInto(new Float32Array(p), inputs)));
          expectRelative(median.squared, squaredDistancesFrom(inputs, median.aggregate), 1e-5);
          for (const trim of new Set([0, 1, Math.floor(n / 10), Math.floor((n - 1) / 2)])) {
            if (2 * trim >= n) continue;
            const trimmed = k.rank(trimmedMeanPlan(n, trim));
            expectRounded(trimmed.aggregate, Float64Array.from(trimmedMeanCountInto(new Float32Array(p), inputs, trim)));
            expectRelative(trimmed.squared, squaredDistancesFrom(inputs, trimmed.aggregate), 1e-5);
          }
        }
      });
    }
  }

  it('weighted_mean matches the float64 weighted mean, over all inputs or the first few, with every distance', () => {
    for (const n of [1, 3, 10]) {
      for (const p of [1, 5, 17, 259, 4099]) {
        const inputs = randomInputs(n, p, n * 5 + p);
        const k = setup(inputs);
        for (const wn of new Set([1, Math.ceil(n / 2), n])) {
          const weights = Array.from({ length: wn }, (_, j) => (j + 1) / ((wn * (wn + 1)) / 2));
          const { aggregate, squared } = k.mean(weights);
          for (let c = 0; c < p; c++) {
            let sum = 0;
            let scale = 0;
            for (let j = 0; j < wn; j++) {
              sum += weights[j] * inputs[j][c];
              scale += Math.abs(weights[j] * inputs[j][c]);
            }
            expect(Math.abs(aggregate[c] - sum)).toBeLessThanOrEqual(1e-6 * scale);
          }
          expectRelative(squared, squaredDistancesFrom(inputs, aggregate), 1e-5);
        }
      }
    }
  });

  it('distances and pairwise match float64 sums, padding excluded, for lengths off every boundary', () => {
    for (const p of [1, 3, 4, 5, 15, 16, 17, 1023, 1025, 5001]) {
      const inputs = randomInputs(6, p, p);
      const k = setup(inputs);
      const center = randomInputs(1, p, p + 1)[0];
      expectRelative(k.distancesFrom(center), squaredDistancesFrom(inputs, center), 1e-5);
      const exact = pairwiseSquaredDistances(inputs);
      const upper = k.pairwise();
      for (let i = 0; i < 6; i++) {
        for (let j = 0; j < 6; j++) {
          if (j > i) expect(Math.abs(upper[i * 6 + j] - exact[i * 6 + j])).toBeLessThanOrEqual(1e-5 * exact[i * 6 + j]);
          else expect(upper[i * 6 + j]).toBe(0);
        }
      }
    }
  });
});
