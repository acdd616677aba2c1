// The statements of a round's commit that used to be model queries (the session's counters, the round row, its
// metric), as raw SQL. Why raw: Prisma 7 runs a batch transaction whose statements are ALL raw without its query
// compiler (each statement's plan is the SQL and its bound values, built in JavaScript and cached nowhere), but
// one model query in the batch sends the whole batch through compileBatch, whose plan embeds the raw statements'
// values (contributions, outbox rows). Every round then compiled a plan no later round could use (about 40-60 KB
// of compiler output per round at 2 nodes, measured with V8's sampling heap profiler over a real training run)
// and pushed it through the query plan cache (QUERY_PLAN_CACHE_ENTRIES), where it lived for the next 64 rounds:
// long enough to be promoted to the old generation, so the coordinator's heap swung by tens of MB between full
// collections and its RSS with it (issue 9, the soak). Values still go through Prisma's parameter binding, as
// the contribution and outbox INSERTs always did, so dates, BigInts and JSON text are stored exactly as the
// client stores them; the repository conformance suite reads every column back.
import type { MetricPoint, RoundSummary, SessionSnapshot } from '../../core/types';
import type { Db } from './client';
import { storedCursor } from './record-rules';
import { sessionData } from './sessions';

type Statement = ReturnType<Db['prisma']['$executeRaw']>;

/**
 * The session's new counters. A raw UPDATE of a missing session changes nothing rather than failing, but the
 * round row of the same batch refers to the session (foreign key), so the commit still fails as a whole.
 */
export function updateSessionStatement(prisma: Db['prisma'], session: SessionSnapshot): Statement {
  const d = sessionData(session);
  return prisma.$executeRaw`UPDATE "TrainingSession" SET "state" = ${d.state}, "config" = ${d.config}, "round" = ${d.round}, "modelVersion" = ${d.modelVersion}, "epoch" = ${d.epoch}, "totalSamples" = ${d.totalSamples}, "startedAt" = ${d.startedAt}, "endedAt" = ${d.endedAt}, "lastTestAccuracy" = ${d.lastTestAccuracy}, "lastTestLoss" = ${d.lastTestLoss}, "lastRoundDurationMs" = ${d.lastRoundDurationMs}, "samplesPerSecond" = ${d.samplesPerSecond}, "message" = ${d.message} WHERE "id" = ${session.id}`;
}

/** The round row (its unique (sessionId, round) key refuses a second recording of the same round). */
export function insertRoundStatement(prisma: Db['prisma'], round: RoundSummary): Statement {
  // Booleans as SQLite stores them (0/1): the same integers Prisma's own writes of a Boolean column leave.
  return prisma.$executeRaw`INSERT INTO "Round" ("sessionId", "round", "modelVersion", "openedAt", "closedAt", "applied", "updates", "samples", "trainLoss", "failures", "totalSamples", "cursor") VALUES (${round.sessionId}, ${round.round}, ${round.modelVersion}, ${new Date(round.openedAt)}, ${new Date(round.closedAt)}, ${round.applied ? 1 : 0}, ${round.updates}, ${round.samples}, ${round.trainLoss}, ${round.failures}, ${BigInt(round.totalSamples)}, ${JSON.stringify(storedCursor(round.cursor))})`;
}

export function insertMetricStatement(prisma: Db['prisma'], sessionId: number, metric: MetricPoint): Statement {
  return prisma.$executeRaw`INSERT INTO "Metric" ("sessionId", "round", "at", "trainLoss", "testLoss", "testAccuracy", "samples", "totalSamples", "samplesPerSecond", "roundDurationMs", "nodes") VALUES (${sessionId}, ${metric.round}, ${new Date(metric.at)}, ${metric.trainLoss}, ${metric.testLoss}, ${metric.testAccuracy}, ${metric.samples}, ${BigInt(metric.totalSamples)}, ${metric.samplesPerSecond}, ${metric.roundDurationMs}, ${metric.nodes})`;
}
