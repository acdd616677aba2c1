// How long a round waits. Two clocks run per round:
// - the hard deadline, from measured arrival times of recent rounds (p90 x margin, clamped to a floor and a
//   ceiling), for nodes that go quiet without failing;
// - the straggler cut-off: once a quorum of the assigned nodes has delivered, the rest get a grace period
//   proportional to how long the quorum took (with a floor), so one slow link cannot stall everyone.
// Pure: the engine feeds it arrival times and asks for durations.

export interface DeadlinePolicy {
  /** Multiplier on the p90 of recent arrival times. */
  margin: number;
  floorMs: number;
  ceilingMs: number;
  /** Fraction of assigned nodes whose delivery starts the straggler grace period. */
  quorumFraction: number;
  /** Grace after the quorum, as a fraction of the time the quorum took... */
  graceFactor: number;
  /** ...but never less than this. */
  graceFloorMs: number;
}

export const DEFAULT_DEADLINE_POLICY: Omit<DeadlinePolicy, 'ceilingMs'> = {
  margin: 3,
  floorMs: 1000,
  quorumFraction: 0.5,
  graceFactor: 1,
  graceFloorMs: 250,
};

/** Recent arrival durations (ms from round open to an update's arrival), newest last, at most `capacity`. */
export type Arrivals = readonly number[];

export const RECENT_KEPT = 64;

/** Appends to a window of recent values (arrival times, accepted norms), keeping the newest `capacity`. */
export function keepRecent(values: readonly number[], value: number, capacity = RECENT_KEPT): readonly number[] {
  const next = values.length >= capacity ? values.slice(values.length - capacity + 1) : values.slice();
  next.push(value);
  return next;
}

export function arrivalQuantile(arrivals: Arrivals, q: number): number | null {
  if (arrivals.length === 0) return null;
  const sorted = [...arrivals].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index];
}

/** Hard deadline for a new round: the ceiling until enough arrivals have been seen to estimate it. */
export function hardDeadlineMs(arrivals: Arrivals, policy: DeadlinePolicy): number {
  const p90 = arrivals.length >= 5 ? arrivalQuantile(arrivals, 0.9) : null;
  if (p90 === null) return policy.ceilingMs;
  return Math.round(Math.min(policy.ceilingMs, Math.max(policy.floorMs, p90 * policy.margin)));
}

/**
 * When a straggler cut-off should fire, given how many nodes were assigned and have delivered, and how long
 * since the round opened. Null while the quorum has not delivered (or everyone has).
 */
export function stragglerCutoffMs(assigned: number, delivered: number, elapsedMs: number, policy: DeadlinePolicy): number | null {
  if (assigned < 2 || delivered >= assigned) return null;
  if (delivered < Math.ceil(policy.quorumFraction * assigned)) return null;
  return Math.round(Math.max(policy.graceFloorMs, elapsedMs * policy.graceFactor));
}
