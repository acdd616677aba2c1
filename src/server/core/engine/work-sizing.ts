// Work sized to capacity: a round's global batch split among its nodes in proportion to their measured speed,
// so that a node ten times slower gets a tenth of the samples and everyone finishes at about the same time.
// The global batch is a hyperparameter of the optimizer step and stays fixed whatever the number of nodes: a
// node joining or leaving changes who does the work, not what one step is. Pure: speeds come in as numbers.

/** Fewest samples a node is given when it is given any (a smaller shard is mostly round-trip overhead). */
export const DEFAULT_MIN_SHARE = 8;

/**
 * Integer shares, one per speed, that sum exactly to `globalBatch`, proportional to `speeds` (samples/s), each
 * at least `minShare`. A speed not yet measured (0, negative, NaN) counts as the median of the measured ones
 * (or 1 when none is), so a newcomer gets a typical share until its first round measures it. When there are
 * more nodes than the global batch allows at `minShare` each, the slowest are given 0: the caller leaves them
 * out of the round (with a global batch of 256 and a minimum of 8, at most 32 nodes work on one step).
 */
export function shareSamples(globalBatch: number, speeds: readonly number[], minShare = DEFAULT_MIN_SHARE): number[] {
  const n = speeds.length;
  if (n === 0) return [];
  const total = Math.max(0, Math.floor(globalBatch));
  const floorShare = Math.max(1, Math.floor(minShare));
  const measured = speeds.filter((s) => Number.isFinite(s) && s > 0).sort((a, b) => a - b);
  const typical = measured.length === 0 ? 1 : measured[Math.floor((measured.length - 1) / 2)];
  const speed = speeds.map((s) => (Number.isFinite(s) && s > 0 ? s : typical));
  // Who works: everyone if the batch allows minShare each, else the fastest that fit (ties: lower index).
  const capacity = Math.floor(total / floorShare);
  const working = new Set(
    speed
      .map((s, i) => ({ s, i }))
      .sort((a, b) => b.s - a.s || a.i - b.i)
      .slice(0, Math.max(capacity, total > 0 ? 1 : 0))
      .map((x) => x.i),
  );
  const shares = new Array<number>(n).fill(0);
  if (working.size === 0) return shares;
  // Water-filling: nodes whose proportional share falls under the minimum are held at it, and the rest of the
  // batch is shared among the others in proportion to speed, until no share falls under the minimum.
  const atMinimum = new Set<number>();
  let ideal = new Map<number, number>();
  for (;;) {
    const free = [...working].filter((i) => !atMinimum.has(i));
    const rest = total - atMinimum.size * floorShare;
    const sum = free.reduce((acc, i) => acc + speed[i], 0);
    ideal = new Map(free.map((i) => [i, (rest * speed[i]) / sum]));
    const under = free.filter((i) => ideal.get(i)! < floorShare);
    if (under.length === 0 || under.length === free.length) {
      for (const i of under) ideal.set(i, rest / free.length);
      break;
    }
    for (const i of under) atMinimum.add(i);
  }
  for (const i of atMinimum) ideal.set(i, floorShare);
  // Largest remainder: floor every ideal share, then hand the samples left over to the largest fractions.
  let assigned = 0;
  const fractions: { i: number; f: number }[] = [];
  for (const [i, x] of ideal) {
    shares[i] = Math.floor(x);
    assigned += shares[i];
    fractions.push({ i, f: x - shares[i] });
  }
  fractions.sort((a, b) => b.f - a.f || a.i - b.i);
  for (let k = 0; assigned < total; k = (k + 1) % fractions.length, assigned++) shares[fractions[k].i] += 1;
  return shares;
}

/**
 * The speeds work is sized by. A node's own claim (its calibration at join) is believed only while no node of the
 * round has been measured by the coordinator yet; after that, a node not yet measured counts as at most the median
 * of the measured ones. Otherwise an agent claiming a billion samples/s would be handed nearly the whole global
 * batch (and, under the sample-weighted mean, nearly all the weight) for its first round.
 */
export function sizingSpeeds(nodes: readonly { samplesPerSecond: number; measured: boolean }[]): number[] {
  const measured = nodes.filter((n) => n.measured && Number.isFinite(n.samplesPerSecond) && n.samplesPerSecond > 0).map((n) => n.samplesPerSecond).sort((a, b) => a - b);
  if (measured.length === 0) return nodes.map((n) => n.samplesPerSecond);
  const typical = measured[Math.floor((measured.length - 1) / 2)];
  return nodes.map((n) => (n.measured ? n.samplesPerSecond : Math.min(n.samplesPerSecond > 0 ? n.samplesPerSecond : typical, typical)));
}
