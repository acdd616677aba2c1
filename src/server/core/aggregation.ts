// Reference aggregation math: pure functions over Float32Arrays, no I/O.
// The aggregator pool (src/server/adapters/workers/aggregator-pool.ts) runs a WebAssembly SIMD kernel for the weighted
// mean and the robust rules (src/workers/kernels/robust.wat) and falls back to the functions here when the runtime
// lacks SIMD or shared memory; tests compare both against these float64 references.

import type { AggregateResult, AggregationPlan } from './ports';

/**
 * Validates sample weights and scales them to sum to 1. Weights are sample counts in practice, so they need
 * not sum to 1, but every one must be finite and >= 0 and at least one must be > 0.
 */
export function normalizeWeights(weights: readonly number[]): number[] {
  if (weights.length === 0) throw new Error('normalizeWeights: no weights given');
  let sum = 0;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    if (typeof w !== 'number' || !Number.isFinite(w)) {
      throw new Error(`normalizeWeights: weight ${i} is ${String(w)}; weights must be finite numbers`);
    }
    if (w < 0) throw new Error(`normalizeWeights: weight ${i} is ${w}; weights must not be negative`);
    sum += w;
  }
  if (!(sum > 0)) throw new Error(`normalizeWeights: the ${weights.length} weights sum to 0; at least one must be positive`);
  if (!Number.isFinite(sum)) throw new Error('normalizeWeights: the weights overflow when summed');
  return weights.map((w) => w / sum);
}

function checkShapes(fn: string, out: Float32Array, inputs: readonly Float32Array[]): void {
  if (inputs.length === 0) throw new Error(`${fn}: no inputs`);
  for (let i = 0; i < inputs.length; i++) {
    if (inputs[i].length !== out.length) {
      throw new Error(`${fn}: input ${i} has ${inputs[i].length} values, the output has ${out.length}`);
    }
  }
}

/**
 * out = sum_i w_i * inputs[i] with the weights normalised to sum to 1. Returns out.
 * Inputs are taken four at a time and summed in float64 (JS numbers) before one rounding into out, so the
 * result carries at most ceil(N / 4) float32 roundings per value and out is read-modify-written N / 4 times.
 */
export function weightedMeanInto(out: Float32Array, inputs: readonly Float32Array[], weights: readonly number[]): Float32Array {
  checkShapes('weightedMeanInto', out, inputs);
  if (weights.length !== inputs.length) {
    throw new Error(`weightedMeanInto: ${inputs.length} inputs but ${weights.length} weights`);
  }
  const w = normalizeWeights(weights);
  const n = out.length;
  let j = 0;
  if (inputs.length >= 4) {
    const a = inputs[0], b = inputs[1], c = inputs[2], d = inputs[3];
    const wa = w[0], wb = w[1], wc = w[2], wd = w[3];
    for (let k = 0; k < n; k++) out[k] = wa * a[k] + wb * b[k] + wc * c[k] + wd * d[k];
    j = 4;
  } else {
    out.fill(0);
  }
  for (; j + 4 <= inputs.length; j += 4) {
    const a = inputs[j], b = inputs[j + 1], c = inputs[j + 2], d = inputs[j + 3];
    const wa = w[j], wb = w[j + 1], wc = w[j + 2], wd = w[j + 3];
    for (let k = 0; k < n; k++) out[k] += wa * a[k] + wb * b[k] + wc * c[k] + wd * d[k];
  }
  for (; j < inputs.length; j++) {
    const a = inputs[j];
    const wa = w[j];
    for (let k = 0; k < n; k++) out[k] += wa * a[k];
  }
  return out;
}

/** Sorts the first n entries of a small scratch array in place (insertion sort: n is the number of nodes). */
function sortSmall(values: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) {
    const v = values[i];
    let k = i - 1;
    while (k >= 0 && values[k] > v) {
      values[k + 1] = values[k];
      k--;
    }
    values[k + 1] = v;
  }
}

/**
 * Coordinate-wise trimmed mean: for each coordinate, drop the floor(trimFraction * N) smallest and largest
 * values and average the rest (unweighted: a trimmed mean is meant to bound any one node's influence).
 * trimFraction is in [0, 0.5); with trimFraction 0 it is the plain mean. Returns out.
 */
export function trimmedMeanInto(out: Float32Array, inputs: readonly Float32Array[], trimFraction: number): Float32Array {
  checkShapes('trimmedMeanInto', out, inputs);
  if (!Number.isFinite(trimFraction) || trimFraction < 0 || trimFraction >= 0.5) {
    throw new Error(`trimmedMeanInto: trimFraction is ${trimFraction}; it must be in [0, 0.5)`);
  }
  return trimmedMeanCountInto(out, inputs, Math.floor(trimFraction * inputs.length));
}

/**
 * Coordinate-wise trimmed mean by count: for each coordinate drop the `trim` smallest and `trim` largest values
 * (0 <= 2 * trim < N) and average the rest, summed in float64 in ascending order. Returns out.
 */
export function trimmedMeanCountInto(out: Float32Array, inputs: readonly Float32Array[], trim: number): Float32Array {
  checkShapes('trimmedMeanCountInto', out, inputs);
  const n = inputs.length;
  checkTrim('trimmedMeanCountInto', trim, n);
  const drop = trim;
  const kept = n - 2 * drop;
  const column = new Float64Array(n);
  for (let k = 0; k < out.length; k++) {
    for (let i = 0; i < n; i++) column[i] = inputs[i][k];
    sortSmall(column, n);
    let sum = 0;
    for (let i = drop; i < n - drop; i++) sum += column[i];
    out[k] = sum / kept;
  }
  return out;
}

/** Coordinate-wise median (the mean of the two middle values when N is even). Returns out. */
export function coordinateMedianInto(out: Float32Array, inputs: readonly Float32Array[]): Float32Array {
  checkShapes('coordinateMedianInto', out, inputs);
  const n = inputs.length;
  const mid = n >> 1;
  const column = new Float64Array(n);
  for (let k = 0; k < out.length; k++) {
    for (let i = 0; i < n; i++) column[i] = inputs[i][k];
    sortSmall(column, n);
    out[k] = n % 2 === 1 ? column[mid] : (column[mid - 1] + column[mid]) / 2;
  }
  return out;
}

function checkTrim(fn: string, trim: number, n: number): void {
  if (!Number.isInteger(trim) || trim < 0 || 2 * trim >= n) {
    throw new Error(`${fn}: trim is ${trim} with ${n} inputs; it must be an integer with 0 <= 2 * trim < ${n}`);
  }
}

/** Multi-Krum's conditions (Blanchard et al. 2017): N > 2f + 2 and 1 <= m <= N - f. */
export function checkMultiKrum(n: number, f: number, m: number): void {
  if (!Number.isInteger(f) || f < 0 || n <= 2 * f + 2) {
    throw new Error(`multi-krum: f is ${f} with ${n} updates; it needs an integer f >= 0 with N > 2f + 2`);
  }
  if (!Number.isInteger(m) || m < 1 || m > n - f) {
    throw new Error(`multi-krum: m is ${m} with ${n} updates and f = ${f}; it needs an integer 1 <= m <= N - f`);
  }
}

/** Validates a plan against the number of updates; throws a message naming the rule and the bad value. */
export function checkAggregationPlan(plan: AggregationPlan, n: number): void {
  if (n === 0) throw new Error('aggregate: no slots given');
  switch (plan.rule) {
    case 'weighted-mean':
      if (plan.weights.length !== n) throw new Error(`aggregate: ${n} slots but ${plan.weights.length} weights`);
      normalizeWeights(plan.weights);
      return;
    case 'trimmed-mean':
      checkTrim('aggregate (trimmed-mean)', plan.trim, n);
      return;
    case 'median':
      return;
    case 'multi-krum':
      checkMultiKrum(n, plan.f, plan.m);
      return;
    default:
      throw new Error(`aggregate: unknown rule ${String((plan as { rule: unknown }).rule)}`);
  }
}

/** ||inputs[i] - center||^2 for every input, summed in float64. */
export function squaredDistancesFrom(inputs: readonly Float32Array[], center: Float32Array): Float64Array {
  const out = new Float64Array(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const x = inputs[i];
    let sum = 0;
    for (let k = 0; k < center.length; k++) {
      const d = x[k] - center[k];
      sum += d * d;
    }
    out[i] = sum;
  }
  return out;
}

/** The symmetric N x N matrix of squared distances between inputs (row-major, zero diagonal), in float64. */
export function pairwiseSquaredDistances(inputs: readonly Float32Array[]): Float64Array {
  const n = inputs.length;
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const a = inputs[i];
      const b = inputs[j];
      let sum = 0;
      for (let k = 0; k < a.length; k++) {
        const d = a[k] - b[k];
        sum += d * d;
      }
      out[i * n + j] = sum;
      out[j * n + i] = sum;
    }
  }
  return out;
}

/**
 * Multi-Krum's selection from the squared-distance matrix (row-major N x N; only i < j entries are read, so an
 * upper-triangular one will do): score_i = sum of the N - f - 2 smallest squared distances from i to the others;
 * keep the m lowest scores (ties: lower index). Returns the kept indices ascending and every score.
 */
export function multiKrumSelect(squared: Float64Array, n: number, f: number, m: number): { kept: number[]; scores: Float64Array } {
  checkMultiKrum(n, f, m);
  if (squared.length !== n * n) throw new Error(`multiKrumSelect: ${squared.length} distances for ${n} updates; expected ${n * n}`);
  const neighbours = n - f - 2;
  const scores = new Float64Array(n);
  const row = new Float64Array(n - 1);
  for (let i = 0; i < n; i++) {
    let c = 0;
    for (let j = 0; j < n; j++) if (j !== i) row[c++] = i < j ? squared[i * n + j] : squared[j * n + i];
    row.sort();
    let score = 0;
    for (let k = 0; k < neighbours; k++) score += row[k];
    scores[i] = score;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b] || a - b);
  return { kept: order.slice(0, m).sort((a, b) => a - b), scores };
}

/** Square roots in place (squared distances to distances). */
function sqrtAll(values: Float64Array): Float64Array {
  for (let i = 0; i < values.length; i++) values[i] = Math.sqrt(values[i]);
  return values;
}

/**
 * The reference for Aggregator.aggregate: every rule by the functions above, on this thread. The JS fallback
 * backend and the unit-test fake run this; the WebAssembly pool is tested against it.
 */
export function aggregateReference(inputs: readonly Float32Array[], plan: AggregationPlan): AggregateResult {
  checkAggregationPlan(plan, inputs.length);
  checkShapes('aggregate', new Float32Array(inputs[0].length), inputs);
  const out = new Float32Array(inputs[0].length);
  let kept: number[] | undefined;
  let scores: Float64Array | undefined;
  switch (plan.rule) {
    case 'weighted-mean':
      weightedMeanInto(out, inputs, plan.weights);
      break;
    case 'trimmed-mean':
      trimmedMeanCountInto(out, inputs, plan.trim);
      break;
    case 'median':
      coordinateMedianInto(out, inputs);
      break;
    case 'multi-krum': {
      ({ kept, scores } = multiKrumSelect(pairwiseSquaredDistances(inputs), inputs.length, plan.f, plan.m));
      weightedMeanInto(out, kept.map((i) => inputs[i]), kept.map(() => 1));
      break;
    }
  }
  const result: AggregateResult = { aggregate: out, distances: sqrtAll(squaredDistancesFrom(inputs, out)) };
  if (kept) {
    result.kept = kept;
    result.scores = scores;
  }
  return result;
}
