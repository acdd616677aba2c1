// Accounting: the records a closed round leaves (summary, one contribution per update, the metric, the
// session's new counters) and the committed events they amount to; credit as a fold over contributions; when
// an epoch is closed. The ledger audit (../ledger.ts) checks the same rows from the other side. Pure.
import type { RoundOutcome, OpenRound } from '../round';
import type { DataCursor } from '../shards';
import type { ContributionRecord, MetricPoint, RoundSummary, SessionSnapshot } from '../types';
import { evolveAll, NO_CREDIT, type CommittedEvent, type DurableSession, type NodeCredit } from './committed';

export interface RoundRecords {
  summary: RoundSummary;
  contributions: ContributionRecord[];
  metric: MetricPoint;
  events: CommittedEvent[];
}

/** Samples per second over the last rounds (wall time from the first of them opening to the last closing). */
export function recentThroughput(recent: readonly MetricPoint[], latest: MetricPoint, since: number): number {
  // Only rounds run by this process: after a resume, the gap since the last run is not training time.
  const window = [...recent.slice(-19), latest].filter((m) => m.at >= since);
  if (window.length === 0) return 0;
  const first = window[0];
  const last = window[window.length - 1];
  const span = last.at - (first.at - first.roundDurationMs);
  const samples = window.reduce((sum, m) => sum + m.samples, 0);
  return span > 0 ? (samples * 1000) / span : 0;
}

/**
 * The highest epoch all of whose samples reached the model: every epoch before the first one that still has
 * fresh data or returned shards waiting.
 */
export function closedEpochOf(cursor: DataCursor, trainSize: number): number {
  let firstOpen = cursor.position >= trainSize ? cursor.epoch + 1 : cursor.epoch;
  for (const shard of cursor.pending) firstOpen = Math.min(firstOpen, shard.epoch);
  return firstOpen - 1;
}

export function roundRecords(input: {
  session: DurableSession;
  open: OpenRound<number>;
  outcome: RoundOutcome<number>;
  closedAt: number;
  recent: readonly MetricPoint[];
  since: number;
  /** Outlier score per node, when the round's aggregation measured them (kept with applied contributions). */
  outlierScores?: ReadonlyMap<number, number>;
  /** The factor each clipped update was scaled down by (kept with applied contributions). */
  scales?: ReadonlyMap<number, number>;
}): RoundRecords {
  const { session, open, outcome, closedAt } = input;
  const modelVersion = session.modelVersion + (outcome.apply ? 1 : 0);
  const totalSamples = session.totalSamples + outcome.samples;
  const metric: MetricPoint = {
    round: open.round,
    at: closedAt,
    trainLoss: Number.isFinite(outcome.trainLoss) ? outcome.trainLoss : 0,
    testLoss: null,
    testAccuracy: null,
    samples: outcome.samples,
    totalSamples,
    samplesPerSecond: 0,
    roundDurationMs: closedAt - open.openedAt,
    nodes: outcome.apply ? outcome.accepted.length : 0,
  };
  metric.samplesPerSecond = recentThroughput(input.recent, metric, input.since);
  const cursor = structuredClone(outcome.cursor);
  const summary: RoundSummary = {
    sessionId: session.id,
    round: open.round,
    modelVersion,
    openedAt: open.openedAt,
    closedAt,
    applied: outcome.apply,
    updates: outcome.accepted.length,
    samples: outcome.samples,
    trainLoss: metric.trainLoss,
    failures: outcome.missing.length,
    totalSamples,
    cursor,
  };
  const contributions: ContributionRecord[] = outcome.accepted.map((u) => {
    const assignment = open.assignments.get(u.nodeId)!;
    return {
      sessionId: session.id,
      round: open.round,
      nodeId: u.nodeId,
      attempt: u.attempt,
      samples: u.samples,
      epoch: outcome.apply ? assignment.epoch : 0,
      shardStart: outcome.apply ? assignment.shardStart : 0,
      shardCount: outcome.apply ? assignment.shardCount : 0,
      checksum: u.checksum,
      trainLoss: u.trainLoss,
      status: outcome.apply ? 'applied' : 'rejected',
      reason: outcome.apply ? null : `QUORUM_NOT_MET: round ${open.round} was not applied: ${outcome.reason}`,
      receivedAt: u.receivedAt,
      ...(outcome.apply && input.outlierScores?.has(u.nodeId) ? { outlierScore: input.outlierScores.get(u.nodeId)! } : {}),
      ...(outcome.apply && input.scales?.has(u.nodeId) ? { scale: input.scales.get(u.nodeId)! } : {}),
    };
  });
  const events: CommittedEvent[] = [
    {
      kind: 'round-committed',
      sessionId: session.id,
      round: open.round,
      applied: outcome.apply,
      modelVersion,
      samples: outcome.samples,
      totalSamples,
      epoch: cursor.epoch,
      cursor,
      metric,
    },
    ...contributions.map((c): CommittedEvent => ({ kind: 'node-credited', sessionId: session.id, round: open.round, nodeId: c.nodeId, status: c.status, samples: c.samples })),
  ];
  const closed = closedEpochOf(outcome.cursor, session.trainSize);
  for (let epoch = session.closedEpoch + 1; epoch <= closed; epoch++) events.push({ kind: 'epoch-closed', sessionId: session.id, epoch, round: open.round });
  return { summary, contributions, metric, events };
}

/** The session row a commit writes: the durable session after the events, with the live figures beside it. */
export function committedSnapshot(session: DurableSession, events: readonly CommittedEvent[], live: Pick<SessionSnapshot, 'lastTestAccuracy' | 'lastTestLoss' | 'lastRoundDurationMs' | 'samplesPerSecond'>): SessionSnapshot {
  const next = evolveAll({ sessions: new Map([[session.id, session]]), credits: new Map() }, events).sessions.get(session.id)!;
  return {
    id: next.id,
    state: next.state,
    config: next.config,
    round: next.round,
    modelVersion: next.modelVersion,
    epoch: next.epoch,
    totalSamples: next.totalSamples,
    startedAt: next.startedAt,
    endedAt: next.endedAt,
    message: next.message,
    ...live,
  };
}

/** Per-node credit as a fold over a session's contributions (recovery rebuilds it from the ledger). */
export function creditsFrom(contributions: readonly Pick<ContributionRecord, 'nodeId' | 'status' | 'samples'>[]): Map<number, NodeCredit> {
  const credits = new Map<number, NodeCredit>();
  for (const c of contributions) {
    const credit = credits.get(c.nodeId) ?? NO_CREDIT;
    credits.set(
      c.nodeId,
      c.status === 'applied'
        ? { ...credit, acceptedContributions: credit.acceptedContributions + 1, acceptedSamples: credit.acceptedSamples + c.samples }
        : { ...credit, rejectedContributions: credit.rejectedContributions + 1 },
    );
  }
  return credits;
}
