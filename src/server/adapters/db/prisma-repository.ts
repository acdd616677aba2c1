// TrainingRepository on Prisma 7 + SQLite (better-sqlite3 driver adapter).
// The only module that touches the generated client: explicit selects, rows mapped to domain types (epoch ms
// numbers, plain numbers for BigInt columns), Prisma errors translated to coded HyperGpuErrors.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { HyperGpuError } from '../../../protocol/errors';
import type { TrainingRepository } from '../../core/ports';
import type {
  CheckpointRecord,
  ContributionRecord,
  DataCursorRecord,
  MetricPoint,
  NodeCapabilities,
  RoundSummary,
  SessionConfig,
  SessionEvent,
  SessionSnapshot,
  SessionState,
} from '../../core/types';
import { Prisma, PrismaClient } from './generated/client';
import { applyMigrations, sqliteFilePath, type MigrationLog } from './migrate';
import {
  RESUMABLE_STATES,
  SESSION_STATES,
  checkCheckpoint,
  checkContributionOfRound,
  checkEpochMs,
  checkEvaluation,
  checkEvent,
  checkMetric,
  checkNode,
  checkRejection,
  checkRound,
  checkSession,
  checkSessionConfig,
  checkSessionOfRound,
  compareContributions,
  isSessionEventKind,
  storedCursor,
} from './record-rules';

export interface PrismaRepositoryOptions {
  /** Folder of Prisma migration folders; defaults to the repository's prisma/migrations. */
  migrationsDir?: string;
  log?: MigrationLog;
}

/** prisma/migrations next to the sources; falls back to the working directory (e.g. in a bundled build). */
export function defaultMigrationsDir(): string {
  const besideSources = fileURLToPath(new URL('../../../../prisma/migrations', import.meta.url));
  return existsSync(besideSources) ? besideSources : join(process.cwd(), 'prisma', 'migrations');
}

const sessionSelect = {
  id: true,
  state: true,
  config: true,
  round: true,
  modelVersion: true,
  epoch: true,
  totalSamples: true,
  startedAt: true,
  endedAt: true,
  lastTestAccuracy: true,
  lastTestLoss: true,
  lastRoundDurationMs: true,
  samplesPerSecond: true,
  message: true,
} as const satisfies Prisma.TrainingSessionSelect;

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

const contributionSelect = {
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
} as const satisfies Prisma.ContributionSelect;

const rejectedSelect = { ...contributionSelect, reason: true } as const satisfies Prisma.RejectedUpdateSelect;

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

const checkpointSelect = {
  sessionId: true,
  round: true,
  modelVersion: true,
  sha256: true,
  path: true,
  bytes: true,
  createdAt: true,
} as const satisfies Prisma.CheckpointSelect;

const eventSelect = {
  sessionId: true,
  at: true,
  round: true,
  kind: true,
  message: true,
  nodeId: true,
  detail: true,
} as const satisfies Prisma.SessionEventSelect;

type SessionRow = Prisma.TrainingSessionGetPayload<{ select: typeof sessionSelect }>;
type RoundRow = Prisma.RoundGetPayload<{ select: typeof roundSelect }>;
type ContributionRow = Prisma.ContributionGetPayload<{ select: typeof contributionSelect }>;
type RejectedRow = Prisma.RejectedUpdateGetPayload<{ select: typeof rejectedSelect }>;
type MetricRow = Prisma.MetricGetPayload<{ select: typeof metricSelect }>;
type CheckpointRow = Prisma.CheckpointGetPayload<{ select: typeof checkpointSelect }>;
type EventRow = Prisma.SessionEventGetPayload<{ select: typeof eventSelect }>;

const ms = (date: Date): number => date.getTime();
const msOrNull = (date: Date | null): number | null => (date === null ? null : date.getTime());

function toSession(row: SessionRow): SessionSnapshot {
  if (!SESSION_STATES.includes(row.state as SessionState)) {
    throw new Error(`session ${row.id} has state ${row.state} in the database, which is not a session state`);
  }
  return {
    id: row.id,
    state: row.state as SessionState,
    config: JSON.parse(row.config) as SessionConfig,
    round: row.round,
    modelVersion: row.modelVersion,
    epoch: row.epoch,
    totalSamples: Number(row.totalSamples),
    startedAt: ms(row.startedAt),
    endedAt: msOrNull(row.endedAt),
    lastTestAccuracy: row.lastTestAccuracy,
    lastTestLoss: row.lastTestLoss,
    lastRoundDurationMs: row.lastRoundDurationMs,
    samplesPerSecond: row.samplesPerSecond,
    message: row.message,
  };
}

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
    cursor: JSON.parse(row.cursor) as DataCursorRecord,
  };
}

function toEvent(row: EventRow): SessionEvent {
  if (!isSessionEventKind(row.kind)) {
    throw new Error(`session ${row.sessionId} has an event of kind ${row.kind} in the database, which is not a session event kind`);
  }
  return {
    sessionId: row.sessionId,
    at: ms(row.at),
    round: row.round,
    kind: row.kind,
    message: row.message,
    nodeId: row.nodeId,
    detail: row.detail === null ? null : (JSON.parse(row.detail) as SessionEvent['detail']),
  };
}

function roundData(round: RoundSummary) {
  return {
    sessionId: round.sessionId,
    round: round.round,
    modelVersion: round.modelVersion,
    openedAt: new Date(round.openedAt),
    closedAt: new Date(round.closedAt),
    applied: round.applied,
    updates: round.updates,
    samples: round.samples,
    trainLoss: round.trainLoss,
    failures: round.failures,
    totalSamples: BigInt(round.totalSamples),
    cursor: JSON.stringify(storedCursor(round.cursor)),
  };
}

/** Every stored field of a session but its id (updateSession and recordRound write the same columns). */
function sessionData(session: SessionSnapshot) {
  return {
    state: session.state,
    config: JSON.stringify(session.config),
    round: session.round,
    modelVersion: session.modelVersion,
    epoch: session.epoch,
    totalSamples: BigInt(session.totalSamples),
    startedAt: new Date(session.startedAt),
    endedAt: session.endedAt === null ? null : new Date(session.endedAt),
    lastTestAccuracy: session.lastTestAccuracy,
    lastTestLoss: session.lastTestLoss,
    lastRoundDurationMs: session.lastRoundDurationMs,
    samplesPerSecond: session.samplesPerSecond,
    message: session.message,
  };
}

function toContribution(row: ContributionRow | RejectedRow): ContributionRecord {
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

function toCheckpoint(row: CheckpointRow): CheckpointRecord {
  return {
    sessionId: row.sessionId,
    round: row.round,
    modelVersion: row.modelVersion,
    sha256: row.sha256,
    path: row.path,
    bytes: Number(row.bytes),
    createdAt: ms(row.createdAt),
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
  };
}

function rejectionData(c: ContributionRecord) {
  return { ...contributionData(c), reason: c.reason ?? '' };
}

type ConstraintKind = 'unique' | 'foreignKey' | 'notFound' | null;

interface DriverAdapterMeta {
  target?: unknown;
  driverAdapterError?: { cause?: { kind?: string; constraint?: { fields?: string[] } } };
}

/** Model calls report P2002/P2003/P2025; raw SQL reports P2010 with the driver adapter's portable kind. */
function constraintKind(error: Prisma.PrismaClientKnownRequestError): ConstraintKind {
  const kind = (error.meta as DriverAdapterMeta | undefined)?.driverAdapterError?.cause?.kind;
  if (error.code === 'P2002' || kind === 'UniqueConstraintViolation') return 'unique';
  if (error.code === 'P2003' || kind === 'ForeignKeyConstraintViolation') return 'foreignKey';
  if (error.code === 'P2025') return 'notFound';
  return null;
}

function uniqueTarget(error: Prisma.PrismaClientKnownRequestError): string {
  const meta = error.meta as DriverAdapterMeta | undefined;
  const fields = meta?.driverAdapterError?.cause?.constraint?.fields ?? meta?.target;
  return Array.isArray(fields) ? `unique on ${fields.join(', ')}` : 'unique constraint';
}

/** Turns constraint failures into coded errors with ids in the message; anything else passes through. */
function translate(error: unknown, context: string): never {
  if (error instanceof Prisma.PrismaClientKnownRequestError) {
    const kind = constraintKind(error);
    const wrapped =
      kind === 'unique'
        ? new HyperGpuError('CONFLICT', `${context}: already recorded (${uniqueTarget(error)})`)
        : kind === 'foreignKey'
          ? new HyperGpuError('NOT_FOUND', `${context}: refers to a session, round or node that does not exist`)
          : kind === 'notFound'
            ? new HyperGpuError('NOT_FOUND', `${context}: not found`)
            : null;
    if (wrapped) {
      wrapped.cause = error;
      throw wrapped;
    }
  }
  throw error;
}

// 11 parameters a row: 11,000 per statement, under SQLite's 32,766 and PostgreSQL's 65,535 bind limits.
const CONTRIBUTION_ROWS_PER_INSERT = 1000;

/**
 * Opens (creating and migrating when needed) the SQLite database at `dbFile` (a path or a `file:` URL).
 * The repository holds one connection; close() releases it.
 */
export async function createPrismaRepository(dbFile: string, options: PrismaRepositoryOptions = {}): Promise<TrainingRepository> {
  const path = sqliteFilePath(dbFile);
  // Migrations and Prisma use separate connections, and two connections to ':memory:' are two databases.
  if (path === ':memory:') throw new Error('createPrismaRepository needs a database file; use the fake repository for in-memory tests');
  applyMigrations(path, options.migrationsDir ?? defaultMigrationsDir(), options.log);
  // better-sqlite3's own busy timeout (ms): wait for another process's write lock rather than fail.
  const prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: path, timeout: 5_000 }) });
  await prisma.$connect();

  // The hot path of every round. One multi-row INSERT instead of createMany: measured here, 100 rows took
  // about 8 ms instead of about 30 ms with createMany (Prisma's per-row work, not SQLite, was the cost). Values
  // still go through Prisma's parameter binding, so dates and BigInts are stored exactly as the client stores
  // them (ISO text and INTEGER on SQLite), and the quoted names are the same on PostgreSQL.
  function insertContributions(rows: ContributionRecord[]): Prisma.PrismaPromise<number> {
    const values = rows.map((row) => {
      const c = contributionData(row);
      return Prisma.sql`(${c.sessionId}, ${c.round}, ${c.nodeId}, ${c.attempt}, ${c.samples}, ${c.epoch}, ${c.shardStart}, ${c.shardCount}, ${c.checksum}, ${c.trainLoss}, ${c.receivedAt})`;
    });
    return prisma.$executeRaw`INSERT INTO "Contribution" ("sessionId", "round", "nodeId", "attempt", "samples", "epoch", "shardStart", "shardCount", "checksum", "trainLoss", "receivedAt") VALUES ${Prisma.join(values)}`;
  }

  // The adapter runs everything on one better-sqlite3 connection and its plain queries skip the mutex its
  // transactions take, so a call arriving while another call's transaction is open could run inside it and be
  // rolled back with it (a rejection recorded while a duplicate round fails would vanish). Prisma 7.10's batch
  // transactions did not show it in our tests, but nothing guarantees that. Running calls one at a time closes
  // the gap at no real cost: SQLite has a single writer and better-sqlite3 is synchronous anyway.
  let tail: Promise<unknown> = Promise.resolve();
  function serial<T>(work: () => Promise<T>): Promise<T> {
    const run = tail.then(work, work);
    tail = run.catch(() => undefined);
    return run;
  }

  return {
    async createSession(config, startedAt) {
      checkEpochMs('session startedAt', startedAt);
      checkSessionConfig('session config', config);
      return serial(async () => {
        const row = await prisma.trainingSession.create({
          data: { state: 'idle', config: JSON.stringify(config), startedAt: new Date(startedAt) },
          select: { id: true },
        });
        return row.id;
      });
    },

    async updateSession(session) {
      checkSession(session);
      await serial(() =>
        prisma.trainingSession
          .update({
            where: { id: session.id },
            data: sessionData(session),
            select: { id: true },
          })
          .catch((error: unknown) => translate(error, `session ${session.id}`)),
      );
    },

    async getSession(id) {
      return serial(async () => {
        const row = await prisma.trainingSession.findUnique({ where: { id }, select: sessionSelect });
        return row ? toSession(row) : null;
      });
    },

    async listSessions(limit) {
      return serial(async () => {
        const rows = await prisma.trainingSession.findMany({ orderBy: { id: 'desc' }, take: Math.max(0, limit), select: sessionSelect });
        return rows.map(toSession);
      });
    },

    async findResumableSession() {
      return serial(async () => {
        const row = await prisma.trainingSession.findFirst({
          where: { state: { in: [...RESUMABLE_STATES] } },
          orderBy: { id: 'desc' },
          select: sessionSelect,
        });
        return row ? toSession(row) : null;
      });
    },

    async upsertNode(name, capabilities, seenAt) {
      checkNode(name, capabilities, seenAt);
      const caps = {
        backend: capabilities.backend,
        device: capabilities.device,
        samplesPerSecond: capabilities.samplesPerSecond,
        agentVersion: capabilities.agentVersion,
        hostname: capabilities.hostname,
      };
      return serial(async () => {
        const row = await prisma.node.upsert({
          where: { name },
          create: { name, ...caps, firstSeenAt: new Date(seenAt), lastSeenAt: new Date(seenAt) },
          update: { ...caps, lastSeenAt: new Date(seenAt) },
          select: { id: true },
        });
        return row.id;
      });
    },

    async nodeCredential(name) {
      const row = await prisma.node.findUnique({ where: { name }, select: { id: true, tokenHash: true } });
      return row ? { id: row.id, tokenHash: row.tokenHash } : null;
    },

    async setNodeTokenHash(id, tokenHash) {
      if (!/^[0-9a-f]{64}$/.test(tokenHash)) throw new HyperGpuError('BAD_REQUEST', `node ${id} token hash must be 64 lowercase hex digits`);
      await serial(async () => {
        const updated = await prisma.node.updateMany({ where: { id }, data: { tokenHash } });
        if (updated.count === 0) throw new HyperGpuError('NOT_FOUND', `node ${id} does not exist`);
      });
    },

    async recordRound(round, contributions, metric, session) {
      checkRound(round);
      for (const c of contributions) checkContributionOfRound(c, round);
      if (metric) checkMetric(metric, round);
      checkSessionOfRound(session, round);
      const applied = contributions.filter((c) => c.status === 'applied');
      const rejected = contributions.filter((c) => c.status === 'rejected');
      const context = `session ${round.sessionId} round ${round.round}`;
      // A batch transaction: the session's new counters, the round row (with its data cursor), its contributions,
      // its rejections and its metric commit together or not at all, so after a crash the ledger, the cursor and
      // the session totals always agree. The round's unique key makes a second recording of the same round fail
      // here, before anything counts. The session update goes first on purpose: the conformance suite's duplicate
      // contribution case then proves a later failure rolls it back too.
      const writes: Prisma.PrismaPromise<unknown>[] = [
        prisma.trainingSession.update({ where: { id: session.id }, data: sessionData(session), select: { id: true } }),
        prisma.round.create({ data: roundData(round), select: { id: true } }),
      ];
      for (let at = 0; at < applied.length; at += CONTRIBUTION_ROWS_PER_INSERT) {
        writes.push(insertContributions(applied.slice(at, at + CONTRIBUTION_ROWS_PER_INSERT)));
      }
      // Rejected updates handed in with the round are kept (in their own table), not dropped.
      if (rejected.length > 0) writes.push(prisma.rejectedUpdate.createMany({ data: rejected.map(rejectionData) }));
      if (metric) {
        writes.push(
          prisma.metric.create({
            data: {
              sessionId: round.sessionId,
              round: metric.round,
              at: new Date(metric.at),
              trainLoss: metric.trainLoss,
              testLoss: metric.testLoss,
              testAccuracy: metric.testAccuracy,
              samples: metric.samples,
              totalSamples: BigInt(metric.totalSamples),
              samplesPerSecond: metric.samplesPerSecond,
              roundDurationMs: metric.roundDurationMs,
              nodes: metric.nodes,
            },
            select: { id: true },
          }),
        );
      }
      await serial(() => prisma.$transaction(writes).catch((error: unknown) => translate(error, context)));
    },

    async lastRound(sessionId) {
      return serial(async () => {
        const row = await prisma.round.findFirst({ where: { sessionId }, orderBy: { round: 'desc' }, select: roundSelect });
        return row ? toRound(row) : null;
      });
    },

    async recordEvent(event) {
      checkEvent(event);
      await serial(() =>
        prisma.sessionEvent
          .create({
            data: {
              sessionId: event.sessionId,
              at: new Date(event.at),
              round: event.round,
              kind: event.kind,
              message: event.message,
              nodeId: event.nodeId,
              detail: event.detail === null ? null : JSON.stringify(event.detail),
            },
            select: { id: true },
          })
          .catch((error: unknown) => translate(error, `session ${event.sessionId} event ${event.kind}`)),
      );
    },

    async listEvents(sessionId, limit) {
      return serial(async () => {
        // The newest `limit` events, returned oldest first; id order is recording order.
        const rows = await prisma.sessionEvent.findMany({
          where: { sessionId },
          orderBy: { id: 'desc' },
          take: Math.max(0, limit),
          select: eventSelect,
        });
        return rows.reverse().map(toEvent);
      });
    },

    async recordRejection(contribution) {
      checkRejection(contribution);
      const context = `session ${contribution.sessionId} round ${contribution.round} node ${contribution.nodeId} rejection`;
      await serial(() =>
        prisma.rejectedUpdate
          .create({ data: rejectionData(contribution), select: { id: true } })
          .catch((error: unknown) => translate(error, context)),
      );
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

    async listContributions(sessionId) {
      return serial(async () => {
        const [appliedRows, rejectedRows] = await prisma.$transaction([
          prisma.contribution.findMany({ where: { sessionId }, orderBy: { id: 'asc' }, select: contributionSelect }),
          prisma.rejectedUpdate.findMany({ where: { sessionId }, orderBy: { id: 'asc' }, select: rejectedSelect }),
        ]);
        // Array.prototype.sort is stable, so ties keep insertion (id) order, as in the fake.
        return [...appliedRows.map(toContribution), ...rejectedRows.map(toContribution)].sort(compareContributions);
      });
    },

    async listRounds(sessionId) {
      return serial(async () => {
        const rows = await prisma.round.findMany({ where: { sessionId }, orderBy: { round: 'asc' }, select: roundSelect });
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

    async recordCheckpoint(checkpoint) {
      checkCheckpoint(checkpoint);
      const { sessionId, round, sha256 } = checkpoint;
      await serial(() =>
        prisma.checkpoint
          .upsert({
            where: { sessionId_round_sha256: { sessionId, round, sha256 } },
            create: {
              sessionId,
              round,
              sha256,
              modelVersion: checkpoint.modelVersion,
              path: checkpoint.path,
              bytes: BigInt(checkpoint.bytes),
              createdAt: new Date(checkpoint.createdAt),
            },
            // Same content for the same round is the same checkpoint: recording it again changes nothing.
            update: {},
            select: { id: true },
          })
          .catch((error: unknown) => translate(error, `session ${sessionId} round ${round} checkpoint`)),
      );
    },

    async latestCheckpoint(sessionId) {
      return serial(async () => {
        const row = await prisma.checkpoint.findFirst({
          where: { sessionId },
          orderBy: [{ round: 'desc' }, { id: 'desc' }],
          select: checkpointSelect,
        });
        return row ? toCheckpoint(row) : null;
      });
    },

    async listCheckpoints(sessionId) {
      return serial(async () => {
        const rows = await prisma.checkpoint.findMany({
          where: { sessionId },
          orderBy: [{ round: 'asc' }, { id: 'asc' }],
          select: checkpointSelect,
        });
        return rows.map(toCheckpoint);
      });
    },

    async close() {
      return serial(() => prisma.$disconnect());
    },
  };
}
