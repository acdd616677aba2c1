// Reference aggregation math: pure functions over Float32Arrays, no I/O.
// The aggregator pool (src/server/adapters/workers/aggregator-pool.ts) runs a WebAssembly SIMD kernel for the weighted
// mean and falls back to weightedMeanInto here when the runtime lacks SIMD or shared memory; tests compare both
// against a float64 reference. The robust rules (trimmed mean, median) live only here for now.

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
  const n = inputs.length;
  const drop = Math.floor(trimFraction * n);
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
