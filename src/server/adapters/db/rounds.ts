// Rounds and what hangs off them: contributions (the exactly-once ledger), rejected updates, metrics and their
// later evaluation. recordRound and recordRejection write their outbox events in the same transaction.

import type { RoundRange, TrainingRepository } from '../../core/ports';
import type { ContributionRecord, DataCursorRecord, MetricPoint, RoundSummary } from '../../core/types';
import { Prisma } from './generated/client';
import { ms, storedJson, translate, type Db } from './client';
import type { DirectStatement } from './direct-sql';
import { commitWithOutbox, insertOutboxSql, outboxRecords } from './outbox';
import { storedOutboxEvents } from './outbox-rules';
import {
  checkContributionOfRound,
  checkEvaluation,
  checkMetric,
  checkRejection,
  checkRound,
  checkSessionOfRound,
  compareContributions,
  storedCursor,
} from './record-rules';
import { insertContributionsSql, insertMetricSql, insertRejectionsSql, insertRoundSql, updateSessionSql } from './round-commit-sql';

const roundSelect = {
  sessionId: true,
  round: true,
  modelVersion: true,
  openedAt: true,
  closedAt: true,
  applied: true,
  updates: true,
  samples: true,
  trainLoss: true,
  failures: true,
  totalSamples: true,
  cursor: true,
} as const satisfies Prisma.RoundSelect;

export const contributionSelect = {
  id: true,
  sessionId: true,
  round: true,
  nodeId: true,
  attempt: true,
  samples: true,
  epoch: true,
  shardStart: true,
  shardCount: true,
  checksum: true,
  trainLoss: true,
  receivedAt: true,
} as const;

export const appliedSelect = { ...contributionSelect, outlierScore: true, scale: true } as const satisfies Prisma.ContributionSelect;
export const rejectedSelect = { ...contributionSelect, reason: true, count: true } as const satisfies Prisma.RejectedUpdateSelect;

const metricSelect = {
  round: true,
  at: true,
  trainLoss: true,
  testLoss: true,
  testAccuracy: true,
  samples: true,
  totalSamples: true,
  samplesPerSecond: true,
  roundDurationMs: true,
  nodes: true,
} as const satisfies Prisma.MetricSelect;

type RoundRow = Prisma.RoundGetPayload<{ select: typeof roundSelect }>;
type ContributionRow = Prisma.ContributionGetPayload<{ select: typeof appliedSelect }>;
type RejectedRow = Prisma.RejectedUpdateGetPayload<{ select: typeof rejectedSelect }>;
type MetricRow = Prisma.MetricGetPayload<{ select: typeof metricSelect }>;

function toRound(row: RoundRow): RoundSummary {
  return {
    sessionId: row.sessionId,
    round: row.round,
    modelVersion: row.modelVersion,
    openedAt: ms(row.openedAt),
    closedAt: ms(row.closedAt),
    applied: row.applied,
    updates: row.updates,
    samples: row.samples,
    trainLoss: row.trainLoss,
    failures: row.failures,
    totalSamples: Number(row.totalSamples),
    cursor: storedJson(`session ${row.sessionId} round ${row.round} cursor`, row.cursor) as DataCursorRecord,
  };
}

export function toContribution(row: ContributionRow | RejectedRow): ContributionRecord {
  const rejected = 'reason' in row;
  return {
    sessionId: row.sessionId,
    round: row.round,
    nodeId: row.nodeId,
    attempt: row.attempt,
    samples: row.samples,
    epoch: row.epoch,
    shardStart: row.shardStart,
    shardCount: row.shardCount,
    checksum: Number(row.checksum),
    trainLoss: row.trainLoss,
    status: rejected ? 'rejected' : 'applied',
    reason: rejected ? row.reason : null,
    receivedAt: ms(row.receivedAt),
    ...(rejected && row.count !== 1 ? { count: row.count } : {}),
    ...(!rejected && row.outlierScore !== null ? { outlierScore: row.outlierScore } : {}),
    ...(!rejected && row.scale !== null ? { scale: row.scale } : {}),
  };
}

function toMetric(row: MetricRow): MetricPoint {
  return {
    round: row.round,
    at: ms(row.at),
    trainLoss: row.trainLoss,
    testLoss: row.testLoss,
    testAccuracy: row.testAccuracy,
    samples: row.samples,
    totalSamples: Number(row.totalSamples),
    samplesPerSecond: row.samplesPerSecond,
    roundDurationMs: row.roundDurationMs,
    nodes: row.nodes,
  };
}

function contributionData(c: ContributionRecord) {
  return {
    sessionId: c.sessionId,
    round: c.round,
    nodeId: c.nodeId,
    attempt: c.attempt,
    samples: c.samples,
    epoch: c.epoch,
    shardStart: c.shardStart,
    shardCount: c.shardCount,
    checksum: BigInt(c.checksum),
    trainLoss: c.trainLoss,
    receivedAt: new Date(c.receivedAt),
    outlierScore: c.outlierScore ?? null,
    scale: c.scale ?? null,
  };
}

/** The rows of a page of rounds (an index on (sessionId, round) serves it). */
function roundWindow(range: RoundRange | undefined) {
  return range ? { round: { gt: range.afterRound, lte: range.afterRound + range.rounds } } : {};
}

function rejectionData(c: ContributionRecord) {
  const { outlierScore: _scored, scale: _scaled, ...data } = contributionData(c); // applied rows only are scored or scaled
  return { ...data, reason: c.reason ?? '', count: c.count ?? 1 };
}

type RoundMethods = Pick<
  TrainingRepository,
  'recordRound' | 'lastRound' | 'recordRejection' | 'recordEvaluation' | 'listContributions' | 'listRounds' | 'listMetrics'
>;

export function createRoundStore(db: Db): RoundMethods {
  const { prisma, serial } = db;

  return {
    async recordRound(round, contributions, metric, session, outbox) {
      checkRound(round);
      for (const c of contributions) checkContributionOfRound(c, round);
      if (metric) checkMetric(metric, round);
      checkSessionOfRound(session, round);
      const events = storedOutboxEvents(outbox);
      const applied = contributions.filter((c) => c.status === 'applied');
      const rejected = contributions.filter((c) => c.status === 'rejected');
      // One transaction: the session's new counters, the round row (with its data cursor), its contributions,
      // its rejections, its metric and its outbox events commit together or not at all, so after a crash the
      // ledger, the cursor, the session totals and what consumers are told always agree. The round's unique key
      // makes a second recording of the same round fail here, before anything counts. The session update goes
      // first on purpose: the conformance suite's duplicate contribution case then proves a later failure rolls
      // it back too (and the outbox rows, which go last).
      // Raw statements on the direct connection (direct-sql.ts, round-commit-sql.ts say why), in the serial queue
      // like every other write, so the two connections never write at once.
      const context = `session ${round.sessionId} round ${round.round}`;
      const statements: DirectStatement[] = [
        { sql: updateSessionSql(session) },
        { sql: insertRoundSql(round) },
        ...insertContributionsSql(applied).map((sql) => ({ sql })),
        // Rejected updates handed in with the round are kept (in their own table), not dropped.
        ...insertRejectionsSql(rejected).map((sql) => ({ sql })),
        ...(metric ? [{ sql: insertMetricSql(round.sessionId, metric) }] : []),
      ];
      const outboxAt = statements.length;
      for (const sql of insertOutboxSql(events)) statements.push({ sql, returning: true });
      const results = await serial(async () => db.direct.transaction(statements, context));
      return outboxRecords(events, results.slice(outboxAt) as { id: number | bigint }[][], context);
    },

    async lastRound(sessionId) {
      return serial(async () => {
        const row = await prisma.round.findFirst({ where: { sessionId }, orderBy: { round: 'desc' }, select: roundSelect });
        return row ? toRound(row) : null;
      });
    },

    async recordRejection(contribution, outbox) {
      checkRejection(contribution);
      const events = storedOutboxEvents(outbox);
      const context = `session ${contribution.sessionId} round ${contribution.round} node ${contribution.nodeId} rejection`;
      const create = prisma.rejectedUpdate.create({ data: rejectionData(contribution), select: { id: true } });
      return (await commitWithOutbox(db, [create], events, context)).records;
    },

    async recordEvaluation(sessionId, round, testLoss, testAccuracy) {
      checkEvaluation(sessionId, round, testLoss, testAccuracy);
      // The metric row was written with its round; evaluation finishes later and fills in the test figures.
      // A missing row is an error (NOT_FOUND), not an upsert: a metric without its round would be an orphan.
      await serial(() =>
        prisma.metric
          .update({ where: { sessionId_round: { sessionId, round } }, data: { testLoss, testAccuracy }, select: { id: true } })
          .catch((error: unknown) => translate(error, `session ${sessionId} round ${round} metric`)),
      );
    },

    async listContributions(sessionId, range) {
      const where = { sessionId, ...roundWindow(range) };
      return serial(async () => {
        const [appliedRows, rejectedRows] = await prisma.$transaction([
          prisma.contribution.findMany({ where, orderBy: { id: 'asc' }, select: appliedSelect }),
          prisma.rejectedUpdate.findMany({ where, orderBy: { id: 'asc' }, select: rejectedSelect }),
        ]);
        // Array.prototype.sort is stable, so ties keep insertion (id) order, as in the fake.
        return [...appliedRows.map(toContribution), ...rejectedRows.map(toContribution)].sort(compareContributions);
      });
    },

    async listRounds(sessionId, range) {
      return serial(async () => {
        const rows = await prisma.round.findMany({ where: { sessionId, ...roundWindow(range) }, orderBy: { round: 'asc' }, select: roundSelect });
        return rows.map(toRound);
      });
    },

    async listMetrics(sessionId, limit) {
      return serial(async () => {
        // The newest `limit` points, returned oldest first (the order a chart draws them in).
        const rows = await prisma.metric.findMany({
          where: { sessionId },
          orderBy: { round: 'desc' },
          take: Math.max(0, limit),
          select: metricSelect,
        });
        return rows.reverse().map(toMetric);
      });
    },
  };
}
