// Views the operator's console derives from the ledger: a node's contributions over time (latency, throughput,
// rejections by reason, failures) and a round's arrivals against its straggler cut-off. Pure: rows in, views out.
//
// The engine does not record its cut-off or deadline; both are derived here by the engine's own rules
// (core/deadline.ts): once half of the assigned nodes delivered, the rest get a grace as long as that took (at
// least 250 ms); the deadline is 3x the p90 of recent arrivals (from the rounds before, as the engine saw them),
// between 1 s and the session's roundTimeoutMs. Assigned nodes: those that delivered plus the round's failures.
import { DEFAULT_DEADLINE_POLICY, hardDeadlineMs, keepRecent, stragglerCutoffMs } from './deadline';
import type { ContributionRecord, RoundSummary, RoundTimelineEntry, SessionEvent, RoundArrival } from './types';

export interface NodeContribution {
  round: number;
  receivedAt: number;
  /** From the round's opening to this update's arrival: the node's round trip (model down, train, update up). */
  latencyMs: number | null;
  samples: number;
  /** Samples over the round trip: what this node delivered per second of the round. */
  samplesPerSecond: number | null;
  status: 'applied' | 'rejected';
  reason: string | null;
  count: number;
  /** Applied updates scaled down before aggregation (norm clipping): the factor; null when counted as sent. */
  scale: number | null;
}

export interface NodeActivity {
  nodeId: number;
  sessionId: number | null;
  accepted: number;
  /** Applied updates that counted scaled down (norm clipping), credited in full. */
  clipped: number;
  rejected: number;
  rejectedByReason: Record<string, number>;
  contributions: NodeContribution[];
  failures: SessionEvent[];
}

/** The reason's code ('STALE_ROUND: late' → 'STALE_ROUND'). */
export function reasonCode(reason: string | null): string {
  return (reason ?? 'unknown').split(':')[0].trim() || 'unknown';
}

export function nodeActivity(
  nodeId: number,
  sessionId: number | null,
  rounds: readonly RoundSummary[],
  contributions: readonly ContributionRecord[],
  events: readonly SessionEvent[],
): NodeActivity {
  const openedAt = new Map(rounds.map((r) => [r.round, r.openedAt]));
  const mine = contributions.filter((c) => c.nodeId === nodeId).sort((a, b) => a.round - b.round || a.receivedAt - b.receivedAt);
  const rejectedByReason: Record<string, number> = {};
  let accepted = 0;
  let clipped = 0;
  let rejected = 0;
  const rows = mine.map((c): NodeContribution => {
    const count = c.count ?? 1;
    if (c.status === 'applied') {
      accepted += 1;
      if (c.scale !== undefined) clipped += 1;
    } else {
      rejected += count;
      const code = reasonCode(c.reason);
      rejectedByReason[code] = (rejectedByReason[code] ?? 0) + count;
    }
    const opened = openedAt.get(c.round);
    const latencyMs = opened === undefined ? null : Math.max(0, c.receivedAt - opened);
    const samplesPerSecond = latencyMs && c.status === 'applied' ? (c.samples * 1000) / latencyMs : null;
    return { round: c.round, receivedAt: c.receivedAt, latencyMs, samples: c.samples, samplesPerSecond, status: c.status, reason: c.reason, count, scale: c.scale ?? null };
  });
  const failures = events.filter((e) => e.nodeId === nodeId && (e.kind === 'node-failed' || e.kind === 'node-benched'));
  return { nodeId, sessionId, accepted, clipped, rejected, rejectedByReason, contributions: rows, failures };
}

export type { RoundArrival, RoundTimelineEntry } from './types';

export function roundTimeline(rounds: readonly RoundSummary[], contributions: readonly ContributionRecord[], timeoutMs: number): RoundTimelineEntry[] {
  const policy = { ...DEFAULT_DEADLINE_POLICY, ceilingMs: timeoutMs };
  let recent: readonly number[] = [];
  const byRound = new Map<number, ContributionRecord[]>();
  for (const c of contributions) {
    const list = byRound.get(c.round) ?? [];
    list.push(c);
    byRound.set(c.round, list);
  }
  return rounds.map((r) => {
    const rows = (byRound.get(r.round) ?? []).slice().sort((a, b) => a.receivedAt - b.receivedAt);
    const delivered = new Set(rows.map((c) => c.nodeId)).size;
    const assigned = delivered + r.failures;
    const times = rows.map((c) => Math.max(0, c.receivedAt - r.openedAt));
    const quorum = Math.ceil(policy.quorumFraction * assigned);
    const quorumAt = quorum > 0 && times.length >= quorum ? times[quorum - 1] : null;
    const grace = quorumAt === null ? null : stragglerCutoffMs(assigned, quorum, quorumAt, policy);
    const cutoffMs = quorumAt === null || grace === null ? null : quorumAt + grace;
    const deadlineMs = hardDeadlineMs(recent, policy);
    for (let i = 0; i < rows.length; i++) if (rows[i].status === 'applied') recent = keepRecent(recent, times[i]);
    const arrivals = rows.map((c, i): RoundArrival => {
      const code = reasonCode(c.reason);
      const lateReason = c.status === 'rejected' && /STALE|LATE|CLOSED/.test(code);
      return { nodeId: c.nodeId, atMs: times[i], status: c.status, reason: c.reason, late: lateReason || (cutoffMs !== null && times[i] > cutoffMs) };
    });
    return { round: r.round, openedAt: r.openedAt, durationMs: r.closedAt - r.openedAt, applied: r.applied, assigned, failures: r.failures, cutoffMs, deadlineMs, arrivals };
  });
}
