// Loads the robust-aggregation WebAssembly kernels (robust.wat, assembled into the committed robust.wasm by
// scripts/build-kernels.mjs), and builds the comparator networks the `robust` kernel runs.
//
// Choice of network, per rule and N (see the comment at the top of robust.wat for the kernel itself):
// - Batcher's odd-even merge sort, generated for the next power of two and cut to N wires (a comparator that
//   touches a wire >= N never moves anything when those wires hold +inf), then pruned backwards to the
//   comparators that can reach the ranks the rule reads. O(N log^2 N) comparators: 19 for N = 8 (optimal), 32
//   for N = 10 (29 for the median after pruning), about 900 for N = 100 (median, pruned).
// - For a trimmed mean with k dropped at each end: k bubble passes that move the k smallest values to the
//   bottom rows, then k that move the k largest to the top rows. About 2kN comparators: O(N) per coordinate for
//   a fixed k, and 17 instead of 31 for N = 10, k = 1. The middle rows then hold the kept values unsorted, which
//   is all a sum needs. Whichever of the two is shorter is used.
// A per-coordinate selection (quickselect) is O(N) on average but branches on every value, lane by lane, and
// cannot keep four coordinates in one vector; a fixed network can, which is why it stays the method at N = 100
// (see the aggregation bench for the cost against the mean there).

import { readFileSync } from 'node:fs';

/** Coordinates per block of the robust kernel; one scratch row holds one block. */
export const ROBUST_BLOCK_FLOATS = 256;
export const ROBUST_ROW_BYTES = ROBUST_BLOCK_FLOATS * 4;
/** One comparator in the network table: two i32 byte offsets (row * ROBUST_ROW_BYTES). */
export const COMPARATOR_BYTES = 8;

export const ROBUST_WASM_URL = new URL('./robust.wasm', import.meta.url);

export interface RobustKernel {
  /**
   * out[first .. first+count) = (sum of ranks lo .. hi-1 per coordinate) / div, and dist[j] (f64) += the
   * squared distance of input j from out over the range. scratch holds n * ROBUST_ROW_BYTES bytes.
   */
  robust(table: number, n: number, first: number, count: number, net: number, ncmp: number, scratch: number, out: number, lo: number, hi: number, div: number, dist: number): void;
  /**
   * out[first .. first+count) = sum_j w_j in_j over wtable's wn entries (f32, as weighted_sum), and dist[j] (f64)
   * += the squared distance of table's input j from out over the range.
   */
  weighted_mean(wtable: number, wn: number, table: number, n: number, first: number, count: number, out: number, dist: number): void;
  /** dist[j] (f64) += sum over [first, first+count) of (in_j - agg)^2. */
  distances(table: number, n: number, first: number, count: number, agg: number, dist: number): void;
  /** m[i*n + j] (f64) += sum over [first, first+count) of (in_i - in_j)^2 for i < j. */
  pairwise(table: number, n: number, first: number, count: number, m: number): void;
}

export function compileRobust(bytes: Uint8Array<ArrayBuffer> = new Uint8Array(readFileSync(ROBUST_WASM_URL))): WebAssembly.Module {
  return new WebAssembly.Module(bytes);
}

export function instantiateRobust(module: WebAssembly.Module, memory: WebAssembly.Memory): RobustKernel {
  const { exports } = new WebAssembly.Instance(module, { env: { memory } });
  const { robust, weighted_mean, distances, pairwise } = exports;
  if (typeof robust !== 'function' || typeof weighted_mean !== 'function' || typeof distances !== 'function' || typeof pairwise !== 'function') {
    throw new Error('robust.wasm does not export robust, weighted_mean, distances and pairwise: rebuild it with scripts/build-kernels.mjs');
  }
  return {
    robust: robust as RobustKernel['robust'],
    weighted_mean: weighted_mean as RobustKernel['weighted_mean'],
    distances: distances as RobustKernel['distances'],
    pairwise: pairwise as RobustKernel['pairwise'],
  };
}

export type Comparator = readonly [lower: number, upper: number];

/** Batcher's odd-even merge sort on n wires (lower index gets the smaller value). */
export function batcherNetwork(n: number): Comparator[] {
  let size = 1;
  while (size < n) size *= 2;
  const out: Comparator[] = [];
  for (let p = 1; p < size; p *= 2) {
    for (let k = p; k >= 1; k = Math.floor(k / 2)) {
      for (let j = k % p; j <= size - 1 - k; j += 2 * k) {
        for (let i = 0; i <= Math.min(k - 1, size - j - k - 1); i++) {
          if (Math.floor((i + j) / (p * 2)) === Math.floor((i + j + k) / (p * 2)) && i + j + k < n) out.push([i + j, i + j + k]);
        }
      }
    }
  }
  return out;
}

/** Drops the comparators that cannot affect the values on wires lo .. hi-1 at the end. */
export function pruneNetwork(network: readonly Comparator[], lo: number, hi: number): Comparator[] {
  const needed = new Set<number>();
  for (let r = lo; r < hi; r++) needed.add(r);
  const kept: Comparator[] = [];
  for (let c = network.length - 1; c >= 0; c--) {
    const [a, b] = network[c];
    if (needed.has(a) || needed.has(b)) {
      kept.push(network[c]);
      needed.add(a);
      needed.add(b);
    }
  }
  return kept.reverse();
}

/**
 * k passes that sink the k smallest values to rows 0 .. k-1, then k that raise the k largest to rows
 * n-k .. n-1; rows k .. n-k-1 then hold the rest (as a set, not sorted).
 */
export function trimNetwork(n: number, k: number): Comparator[] {
  const out: Comparator[] = [];
  for (let t = 0; t < k; t++) for (let i = n - 1; i > t; i--) out.push([i - 1, i]);
  for (let t = 0; t < k; t++) for (let i = k; i < n - 1 - t; i++) out.push([i, i + 1]);
  return out;
}

/** The rows a rule reads after the network, and what their sum is divided by. */
export interface RankPlan {
  lo: number;
  hi: number;
  div: number;
  network: Comparator[];
}

export function medianPlan(n: number): RankPlan {
  const mid = n >> 1;
  const [lo, hi] = n % 2 === 1 ? [mid, mid + 1] : [mid - 1, mid + 1];
  return { lo, hi, div: hi - lo, network: pruneNetwork(batcherNetwork(n), lo, hi) };
}

export function trimmedMeanPlan(n: number, trim: number): RankPlan {
  const lo = trim;
  const hi = n - trim;
  const sorted = pruneNetwork(batcherNetwork(n), lo, hi);
  const bubbles = trimNetwork(n, trim);
  return { lo, hi, div: hi - lo, network: bubbles.length <= sorted.length ? bubbles : sorted };
}
