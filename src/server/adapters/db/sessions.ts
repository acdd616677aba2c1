// Sessions: the session row, created and updated with the outbox events of the change in one transaction.

import type { TrainingRepository } from '../../core/ports';
import type { SessionConfig, SessionSnapshot, SessionState } from '../../core/types';
import type { Prisma } from './generated/client';
import { corrupt, ms, msOrNull, storedJson, type Db } from './client';
import { commitWithOutbox } from './outbox';
import { checkExplicitSessionId, storedOutboxEvents } from './outbox-rules';
import { RESUMABLE_STATES, SESSION_STATES, checkEpochMs, checkSession, checkSessionConfig } from './record-rules';

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

type SessionRow = Prisma.TrainingSessionGetPayload<{ select: typeof sessionSelect }>;

function toSession(row: SessionRow): SessionSnapshot {
  if (!SESSION_STATES.includes(row.state as SessionState)) {
    corrupt(`session ${row.id} has state ${row.state} in the database, which is not a session state`);
  }
  return {
    id: row.id,
    state: row.state as SessionState,
    config: storedJson(`session ${row.id} config`, row.config) as SessionConfig,
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

/** Every stored field of a session but its id (updateSession and recordRound write the same columns). */
export function sessionData(session: SessionSnapshot) {
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

type SessionMethods = Pick<
  TrainingRepository,
  'createSession' | 'updateSession' | 'lastSessionId' | 'getSession' | 'listSessions' | 'findResumableSession'
>;

export function createSessionStore(db: Db): SessionMethods {
  const { prisma, serial } = db;
  return {
    async createSession(config, startedAt, options = {}) {
      checkEpochMs('session startedAt', startedAt);
      checkSessionConfig('session config', config);
      if (options.id !== undefined) checkExplicitSessionId(options.id);
      const events = storedOutboxEvents(options.outbox);
      const context = options.id === undefined ? 'new session' : `session ${options.id}`;
      const create = prisma.trainingSession.create({
        // An explicit id moves SQLite's AUTOINCREMENT sequence past it, so later ids the database picks stay higher.
        data: { id: options.id, state: 'idle', config: JSON.stringify(config), startedAt: new Date(startedAt) },
        select: { id: true },
      });
      const { results } = await commitWithOutbox(db, [create], events, context);
      return (results[0] as { id: number }).id;
    },

    async updateSession(session, outbox) {
      checkSession(session);
      const events = storedOutboxEvents(outbox);
      const update = prisma.trainingSession.update({ where: { id: session.id }, data: sessionData(session), select: { id: true } });
      return (await commitWithOutbox(db, [update], events, `session ${session.id}`)).records;
    },

    async lastSessionId() {
      // Sessions are never deleted by the application, so the highest id present is the highest ever created.
      return serial(async () => (await prisma.trainingSession.aggregate({ _max: { id: true } }))._max.id ?? 0);
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
  };
}
