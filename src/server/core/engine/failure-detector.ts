// Failure detection that learns each node's rhythm (phi accrual, Hayashibara et al. 2004; Akka's and
// Cassandra's detectors). Every message from a node counts as a heartbeat; the detector keeps a smoothed
// mean and deviation of the gaps between them. A node is suspected when a silence this long has become
// improbable for *that* node: a loaded machine whose heartbeats wander gets slack, a regular one that stops
// is caught as soon as the floor allows. Pure.

export interface HeartbeatStats {
  /** Smoothed gap between messages, ms. */
  meanMs: number;
  /** Smoothed variance of the gap, ms². */
  varianceMs2: number;
  samples: number;
}

export interface DetectorPolicy {
  /** Never fail a node silent for less than this (the configured heartbeat timeout). */
  floorMs: number;
  /** Always fail a node silent for longer than this, however irregular it has been. */
  ceilingMs: number;
  /** Suspicion level that fails a node between floor and ceiling: phi 8 is a 1 in 10^8 chance of a false alarm. */
  phiThreshold: number;
}

/** Smoothing of the gap statistics: recent behaviour counts most, one odd gap does not swing them. */
const ALPHA = 0.1;

export function initialStats(heartbeatMs: number): HeartbeatStats {
  return { meanMs: heartbeatMs, varianceMs2: (heartbeatMs / 4) ** 2, samples: 0 };
}

export function recordGap(stats: HeartbeatStats, gapMs: number): HeartbeatStats {
  if (!(gapMs >= 0)) return stats;
  const delta = gapMs - stats.meanMs;
  const meanMs = stats.meanMs + ALPHA * delta;
  const varianceMs2 = (1 - ALPHA) * (stats.varianceMs2 + ALPHA * delta * delta);
  return { meanMs, varianceMs2, samples: stats.samples + 1 };
}

/**
 * -log10 of the probability that the next message comes later than `silentMs`, for a normal distribution of
 * gaps (the logistic approximation Akka uses: it needs no erf and never returns Infinity for realistic inputs).
 */
export function phi(stats: HeartbeatStats, silentMs: number): number {
  // A floor on the deviation: a perfectly regular sender must not make a few ms of jitter fatal.
  const sd = Math.max(Math.sqrt(stats.varianceMs2), stats.meanMs / 10, 5);
  const y = (silentMs - stats.meanMs) / sd;
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
  const pLater = silentMs > stats.meanMs ? e / (1 + e) : 1 - 1 / (1 + e);
  return -Math.log10(Math.max(pLater, 1e-300));
}

export function isSuspect(stats: HeartbeatStats, silentMs: number, policy: DetectorPolicy): boolean {
  if (silentMs <= policy.floorMs) return false;
  if (silentMs > policy.ceilingMs) return true;
  return phi(stats, silentMs) > policy.phiThreshold;
}
