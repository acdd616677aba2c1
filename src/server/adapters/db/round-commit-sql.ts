// The statements of a round's commit, as SQL (Prisma.sql: placeholders and bound values, nothing compiled).
// They run on the repository's direct connection (direct-sql.ts) as one transaction, not through Prisma's client:
// first because its pipeline was the coordinator's largest per-round cost on the event loop (direct-sql.ts says how
// it was measured), and before that because one model query in a batch sent the whole batch through Prisma's
// query compiler, whose plan embedded the raw values (contributions, outbox rows): every round compiled a plan no
// later round could use and kept it in the plan cache long enough to reach the old generation, so the heap swung
// by tens of MB between full collections (issue 9, the soak). Values are bound the way Prisma's adapter binds them
// (direct-sql.ts's driverValue), so dates, BigInts and JSON text are stored exactly as the client stores them;
// the repository conformance suite reads every column back.
import type { ContributionRecord, MetricPoint, RoundSummary, SessionSnapshot } from '../../core/types';
import { Prisma } from './generated/client';
import { storedCursor } from './record-rules';
import { sessionData } from './sessions';

/**
 * The session's new counters. An UPDATE of a missing session changes nothing rather than failing, but the round
 * row of the same transaction refers to the session (foreign key), so the commit still fails as a whole.
 */
export function updateSessionSql(session: SessionSnapshot): Prisma.Sql {
  const d = sessionData(session);
  return Prisma.sql`UPDATE "TrainingSession" SET "state" = ${d.state}, "config" = ${d.config}, "round" = ${d.round}, "modelVersion" = ${d.modelVersion}, "epoch" = ${d.epoch}, "totalSamples" = ${d.totalSamples}, "startedAt" = ${d.startedAt}, "endedAt" = ${d.endedAt}, "lastTestAccuracy" = ${d.lastTestAccuracy}, "lastTestLoss" = ${d.lastTestLoss}, "lastRoundDurationMs" = ${d.lastRoundDurationMs}, "samplesPerSecond" = ${d.samplesPerSecond}, "message" = ${d.message} WHERE "id" = ${session.id}`;
}

/** The round row (its unique (sessionId, round) key refuses a second recording of the same round). */
export function insertRoundSql(round: RoundSummary): Prisma.Sql {
  // Booleans as SQLite stores them (0/1): the same integers Prisma's own writes of a Boolean column leave.
  return Prisma.sql`INSERT INTO "Round" ("sessionId", "round", "modelVersion", "openedAt", "closedAt", "applied", "updates", "samples", "trainLoss", "failures", "totalSamples", "cursor") VALUES (${round.sessionId}, ${round.round}, ${round.modelVersion}, ${new Date(round.openedAt)}, ${new Date(round.closedAt)}, ${round.applied ? 1 : 0}, ${round.updates}, ${round.samples}, ${round.trainLoss}, ${round.failures}, ${BigInt(round.totalSamples)}, ${JSON.stringify(storedCursor(round.cursor))})`;
}

export function insertMetricSql(sessionId: number, metric: MetricPoint): Prisma.Sql {
  return Prisma.sql`INSERT INTO "Metric" ("sessionId", "round", "at", "trainLoss", "testLoss", "testAccuracy", "samples", "totalSamples", "samplesPerSecond", "roundDurationMs", "nodes") VALUES (${sessionId}, ${metric.round}, ${new Date(metric.at)}, ${metric.trainLoss}, ${metric.testLoss}, ${metric.testAccuracy}, ${metric.samples}, ${BigInt(metric.totalSamples)}, ${metric.samplesPerSecond}, ${metric.roundDurationMs}, ${metric.nodes})`;
}

// At most 13 parameters a row: 13,000 per statement, under SQLite's 32,766 and PostgreSQL's 65,535 bind limits.
export const CONTRIBUTION_ROWS_PER_INSERT = 1000;

/**
 * Applied contributions, one multi-row INSERT per CONTRIBUTION_ROWS_PER_INSERT rows (measured when it was a
 * Prisma batch: 100 rows in about 8 ms instead of about 30 ms with createMany, whose per-row work was the cost).
 * The optional columns (outlier score, clipping scale) are named only when a row of the chunk has them: a round
 * with neither inserts what it always did.
 */
export function insertContributionsSql(rows: readonly ContributionRecord[]): Prisma.Sql[] {
  const statements: Prisma.Sql[] = [];
  for (let at = 0; at < rows.length; at += CONTRIBUTION_ROWS_PER_INSERT) {
    const chunk = rows.slice(at, at + CONTRIBUTION_ROWS_PER_INSERT);
    const scored = chunk.some((row) => row.outlierScore !== undefined);
    const scaled = chunk.some((row) => row.scale !== undefined);
    const values = chunk.map((c) => {
      const fields: unknown[] = [c.sessionId, c.round, c.nodeId, c.attempt, c.samples, c.epoch, c.shardStart, c.shardCount, BigInt(c.checksum), c.trainLoss, new Date(c.receivedAt)];
      if (scored) fields.push(c.outlierScore ?? null);
      if (scaled) fields.push(c.scale ?? null);
      return Prisma.sql`(${Prisma.join(fields)})`;
    });
    const columns = ['"sessionId"', '"round"', '"nodeId"', '"attempt"', '"samples"', '"epoch"', '"shardStart"', '"shardCount"', '"checksum"', '"trainLoss"', '"receivedAt"'];
    if (scored) columns.push('"outlierScore"');
    if (scaled) columns.push('"scale"');
    statements.push(Prisma.sql`INSERT INTO "Contribution" (${Prisma.raw(columns.join(', '))}) VALUES ${Prisma.join(values)}`);
  }
  return statements;
}

/** Rejected updates handed in with the round (rare: a round that refused some at aggregation), same chunks. */
export function insertRejectionsSql(rows: readonly ContributionRecord[]): Prisma.Sql[] {
  const statements: Prisma.Sql[] = [];
  for (let at = 0; at < rows.length; at += CONTRIBUTION_ROWS_PER_INSERT) {
    const values = rows
      .slice(at, at + CONTRIBUTION_ROWS_PER_INSERT)
      .map(
        (c) =>
          Prisma.sql`(${c.sessionId}, ${c.round}, ${c.nodeId}, ${c.attempt}, ${c.samples}, ${c.epoch}, ${c.shardStart}, ${c.shardCount}, ${BigInt(c.checksum)}, ${c.trainLoss}, ${c.reason ?? ''}, ${new Date(c.receivedAt)}, ${c.count ?? 1})`,
      );
    statements.push(
      Prisma.sql`INSERT INTO "RejectedUpdate" ("sessionId", "round", "nodeId", "attempt", "samples", "epoch", "shardStart", "shardCount", "checksum", "trainLoss", "reason", "receivedAt", "count") VALUES ${Prisma.join(values)}`,
    );
  }
  return statements;
}
