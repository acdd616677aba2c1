// Norm clipping and outlier scores around a round's aggregation. Pure: norms and distances come in as numbers.
// Clipping bounds what one update can do to the model whatever rule combines them (a scaled-up update counts no
// more than a typical one); the outlier score makes every node's distance from what the round agreed on
// visible, every round, in the ledger and the node table.

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  return n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/**
 * Per update, the factor that brings its L2 norm down to `factor` x the median norm of the round's updates (1
 * for those already within it). The median is the reference because a minority cannot move it: scaled-up
 * updates from up to half the nodes leave it where the honest ones put it.
 */
export function clipScales(norms: readonly number[], factor: number): number[] {
  if (norms.length === 0 || !(factor > 0)) return norms.map(() => 1);
  const limit = factor * median(norms);
  return norms.map((norm) => (norm > limit && norm > 0 ? limit / norm : 1));
}

/** Scores above this are reported as this (an update at a distance of 1e30 is no more informative than 1e6). */
export const MAX_OUTLIER_SCORE = 1e6;

/**
 * Each update's distance from the aggregate over the median distance of the round's updates: about 1 for a
 * typical update, large for one far from what the round agreed on. Null for a round of one update (nothing to
 * compare with). When the median distance is 0 (most updates equal the aggregate), an update at distance 0
 * scores 0 and any other MAX_OUTLIER_SCORE.
 */
export function outlierScores(distances: readonly number[]): (number | null)[] {
  if (distances.length < 2) return distances.map(() => null);
  const m = median(distances);
  return distances.map((d) => {
    if (!Number.isFinite(d)) return MAX_OUTLIER_SCORE;
    if (m <= 0) return d <= 0 ? 0 : MAX_OUTLIER_SCORE;
    return Math.min(MAX_OUTLIER_SCORE, d / m);
  });
}
