// What a TrainingRepository accepts, checked before anything is written. Shared by the Prisma repository and
// the in-memory fake (tests/support/fake-repository.ts) so both refuse the same inputs with the same codes.
//
// Why these rules: SQLite stores NaN as NULL (a NOT NULL column then fails with an unhelpful message) and
// PostgreSQL `integer` columns are 32-bit, so a value that works in one database fails in the other. Checking
// here gives one clear error on every backend, and the fake makes service tests hit it too.

import { HyperGpuError } from '../../../protocol/errors';
import type {
  CheckpointRecord,
  ContributionRecord,
  DataCursorRecord,
  MetricPoint,
  NodeCapabilities,
  RoundSummary,
  SessionConfig,
  SessionEvent,
  SessionEventKind,
  SessionSnapshot,
  SessionState,
} from '../../core/types';
import type { NewJoinToken } from '../../core/ports';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

export const SESSION_STATES: readonly SessionState[] = ['idle', 'running', 'paused', 'stopped', 'completed', 'failed'];
export const RESUMABLE_STATES: readonly SessionState[] = ['running', 'paused'];

// A record over the union, so adding a kind to the type without listing it here is a compile error.
const EVENT_KINDS: Record<SessionEventKind, true> = {
  'session-started': true,
  'session-paused': true,
  'session-resumed': true,
  'session-stopped': true,
  'session-completed': true,
  'session-failed': true,
  'coordinator-restarted': true,
  'node-joined': true,
  'node-rejoined': true,
  'node-failed': true,
  'node-left': true,
  'round-not-applied': true,
  'node-benched': true,
  'node-audit-failed': true,
};
export const SESSION_EVENT_KINDS = Object.keys(EVENT_KINDS) as readonly SessionEventKind[];

export function isSessionEventKind(kind: string): kind is SessionEventKind {
  return Object.hasOwn(EVENT_KINDS, kind);
}

function bad(message: string): never {
  throw new HyperGpuError('BAD_REQUEST', message);
}

/** Columns stored as Int (32-bit on PostgreSQL). */
function int32(what: string, value: number): void {
  if (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) bad(`${what} must be a 32-bit integer, got ${value}`);
}

/** Columns stored as BigInt, and epoch-millisecond times. */
function int53(what: string, value: number): void {
  if (!Number.isSafeInteger(value)) bad(`${what} must be a safe integer, got ${value}`);
}

function finite(what: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) bad(`${what} must be a finite number, got ${value}`);
}

function optionalFinite(what: string, value: number | null): void {
  if (value !== null) finite(what, value);
}

function text(what: string, value: string, allowEmpty = true): void {
  if (typeof value !== 'string' || (!allowEmpty && value.length === 0)) bad(`${what} must be a ${allowEmpty ? '' : 'non-empty '}string`);
}

export function checkEpochMs(what: string, value: number): void {
  int53(what, value);
}

/**
 * Values stored as JSON text must come back equal: JSON writes NaN and ±Infinity as null (an
 * `maxUpdateNorm: Infinity` would read back as null) and cannot hold bigints, functions or undefined in arrays.
 */
function jsonExact(what: string, value: unknown): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) bad(`${what} must be a finite number (JSON stores ${value} as null), got ${value}`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => jsonExact(`${what}[${i}]`, item));
    return;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, item] of Object.entries(value)) if (item !== undefined) jsonExact(`${what}.${key}`, item);
    return;
  }
  bad(`${what} cannot be stored as JSON (${typeof value})`);
}

/** The session config is stored as JSON text; it must survive the round trip unchanged. */
export function checkSessionConfig(what: string, config: SessionConfig): void {
  if (typeof config !== 'object' || config === null) bad(`${what} must be an object`);
  jsonExact(what, config);
}

export function checkSession(session: SessionSnapshot): void {
  const at = `session ${session.id}`;
  int32(`${at} id`, session.id);
  if (!SESSION_STATES.includes(session.state)) bad(`${at} state ${String(session.state)} is not a session state`);
  checkSessionConfig(`${at} config`, session.config);
  int32(`${at} round`, session.round);
  int32(`${at} modelVersion`, session.modelVersion);
  int32(`${at} epoch`, session.epoch);
  int53(`${at} totalSamples`, session.totalSamples);
  int53(`${at} startedAt`, session.startedAt);
  if (session.endedAt !== null) int53(`${at} endedAt`, session.endedAt);
  optionalFinite(`${at} lastTestAccuracy`, session.lastTestAccuracy);
  optionalFinite(`${at} lastTestLoss`, session.lastTestLoss);
  if (session.lastRoundDurationMs !== null) int32(`${at} lastRoundDurationMs`, session.lastRoundDurationMs);
  finite(`${at} samplesPerSecond`, session.samplesPerSecond);
  if (session.message !== null) text(`${at} message`, session.message);
}

export function checkNode(name: string, capabilities: NodeCapabilities, seenAt: number): void {
  text('node name', name, false);
  text(`node ${name} backend`, capabilities.backend);
  text(`node ${name} device`, capabilities.device);
  finite(`node ${name} samplesPerSecond`, capabilities.samplesPerSecond);
  text(`node ${name} agentVersion`, capabilities.agentVersion);
  text(`node ${name} hostname`, capabilities.hostname);
  int53(`node ${name} seenAt`, seenAt);
}

export function checkRound(round: RoundSummary): void {
  const at = `session ${round.sessionId} round ${round.round}`;
  int32(`${at} sessionId`, round.sessionId);
  int32(`${at} round`, round.round);
  int32(`${at} modelVersion`, round.modelVersion);
  int53(`${at} openedAt`, round.openedAt);
  int53(`${at} closedAt`, round.closedAt);
  if (typeof round.applied !== 'boolean') bad(`${at} applied must be a boolean`);
  int32(`${at} updates`, round.updates);
  int32(`${at} samples`, round.samples);
  finite(`${at} trainLoss`, round.trainLoss);
  int32(`${at} failures`, round.failures);
  int53(`${at} totalSamples`, round.totalSamples);
  checkCursor(`${at} cursor`, round.cursor);
}

function checkCursor(what: string, cursor: DataCursorRecord): void {
  if (typeof cursor !== 'object' || cursor === null) bad(`${what} must be an object`);
  int32(`${what} epoch`, cursor.epoch);
  int32(`${what} position`, cursor.position);
  if (!Array.isArray(cursor.pending)) bad(`${what} pending must be an array`);
  cursor.pending.forEach((shard, i) => {
    if (typeof shard !== 'object' || shard === null) bad(`${what} pending[${i}] must be an object`);
    int32(`${what} pending[${i}] epoch`, shard.epoch);
    int32(`${what} pending[${i}] start`, shard.start);
    int32(`${what} pending[${i}] count`, shard.count);
  });
}

/**
 * The cursor as stored: exactly the fields of DataCursorRecord, in a fixed order. Both repositories store this
 * (the database as JSON text), so extra properties on a caller's object never round-trip in one and not the other.
 */
export function storedCursor(cursor: DataCursorRecord): DataCursorRecord {
  return {
    epoch: cursor.epoch,
    position: cursor.position,
    pending: cursor.pending.map((shard) => ({ epoch: shard.epoch, start: shard.start, count: shard.count })),
  };
}

/** The session written by recordRound must be the round's session. */
export function checkSessionOfRound(session: SessionSnapshot, round: RoundSummary): void {
  checkSession(session);
  if (session.id !== round.sessionId) {
    bad(`recordRound of session ${round.sessionId} round ${round.round} was given session ${session.id} to update`);
  }
}

export function checkContribution(c: ContributionRecord): void {
  const at = `session ${c.sessionId} round ${c.round} node ${c.nodeId} contribution`;
  int32(`${at} sessionId`, c.sessionId);
  int32(`${at} round`, c.round);
  int32(`${at} nodeId`, c.nodeId);
  int32(`${at} attempt`, c.attempt);
  int32(`${at} samples`, c.samples);
  int32(`${at} epoch`, c.epoch);
  int32(`${at} shardStart`, c.shardStart);
  int32(`${at} shardCount`, c.shardCount);
  int53(`${at} checksum`, c.checksum);
  finite(`${at} trainLoss`, c.trainLoss);
  int53(`${at} receivedAt`, c.receivedAt);
  if (c.outlierScore !== undefined) finite(`${at} outlierScore`, c.outlierScore);
  if (c.scale !== undefined && !(c.scale >= 0 && c.scale < 1)) bad(`${at} scale ${c.scale} is not in [0, 1)`);
  if (c.status === 'rejected' && (c.scale !== undefined || c.outlierScore !== undefined)) bad(`${at} is rejected but carries an applied update's scale or outlier score`);
  if (c.status !== 'applied' && c.status !== 'rejected') bad(`${at} status ${String(c.status)} is not applied or rejected`);
  if (c.status === 'rejected' && (typeof c.reason !== 'string' || c.reason.length === 0)) {
    bad(`${at} is rejected without a reason`);
  }
}

/** A contribution passed to recordRound must belong to that round. */
export function checkContributionOfRound(c: ContributionRecord, round: RoundSummary): void {
  checkContribution(c);
  if (c.sessionId !== round.sessionId || c.round !== round.round) {
    bad(
      `contribution of node ${c.nodeId} is for session ${c.sessionId} round ${c.round}, ` +
        `not session ${round.sessionId} round ${round.round}`,
    );
  }
}

export function checkRejection(c: ContributionRecord): void {
  checkContribution(c);
  if (c.status !== 'rejected') {
    bad(`session ${c.sessionId} round ${c.round} node ${c.nodeId}: recordRejection takes rejected updates; applied ones go with recordRound`);
  }
  if (c.count !== undefined && (!Number.isSafeInteger(c.count) || c.count < 1 || c.count > 0x7fffffff)) {
    bad(`session ${c.sessionId} round ${c.round} node ${c.nodeId}: count ${c.count} must be an integer from 1`);
  }
}

export function checkMetric(metric: MetricPoint, round: RoundSummary): void {
  const at = `session ${round.sessionId} round ${round.round} metric`;
  if (metric.round !== round.round) bad(`${at} is for round ${metric.round}`);
  int53(`${at} at`, metric.at);
  finite(`${at} trainLoss`, metric.trainLoss);
  optionalFinite(`${at} testLoss`, metric.testLoss);
  optionalFinite(`${at} testAccuracy`, metric.testAccuracy);
  int32(`${at} samples`, metric.samples);
  int53(`${at} totalSamples`, metric.totalSamples);
  finite(`${at} samplesPerSecond`, metric.samplesPerSecond);
  int32(`${at} roundDurationMs`, metric.roundDurationMs);
  int32(`${at} nodes`, metric.nodes);
}

export function checkEvaluation(sessionId: number, round: number, testLoss: number, testAccuracy: number): void {
  const at = `session ${sessionId} round ${round} evaluation`;
  int32(`${at} sessionId`, sessionId);
  int32(`${at} round`, round);
  finite(`${at} testLoss`, testLoss);
  finite(`${at} testAccuracy`, testAccuracy);
}

export function checkCheckpoint(c: CheckpointRecord): void {
  const at = `session ${c.sessionId} round ${c.round} checkpoint`;
  int32(`${at} sessionId`, c.sessionId);
  int32(`${at} round`, c.round);
  int32(`${at} modelVersion`, c.modelVersion);
  if (typeof c.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(c.sha256)) bad(`${at} sha256 must be 64 lowercase hex digits`);
  text(`${at} path`, c.path, false);
  int53(`${at} bytes`, c.bytes);
  int53(`${at} createdAt`, c.createdAt);
}

export function checkEvent(event: SessionEvent): void {
  const at = `session ${event.sessionId} event`;
  int32(`${at} sessionId`, event.sessionId);
  int53(`${at} at`, event.at);
  int32(`${at} round`, event.round);
  if (typeof event.kind !== 'string' || !isSessionEventKind(event.kind)) bad(`${at} kind ${String(event.kind)} is not a session event kind`);
  text(`${at} message`, event.message);
  if (event.nodeId !== null) int32(`${at} nodeId`, event.nodeId);
  if (event.detail !== null) {
    if (typeof event.detail !== 'object' || Array.isArray(event.detail)) bad(`${at} detail must be an object or null`);
    for (const [key, value] of Object.entries(event.detail)) {
      if (value !== null && typeof value === 'object') bad(`${at} detail.${key} must be a number, string, boolean or null`);
    }
    jsonExact(`${at} detail`, event.detail);
  }
}

/** Order of listContributions: by round, then arrival, then node; applied before rejected on a tie. */
export function compareContributions(a: ContributionRecord, b: ContributionRecord): number {
  return (
    a.round - b.round ||
    a.receivedAt - b.receivedAt ||
    a.nodeId - b.nodeId ||
    (a.status === b.status ? 0 : a.status === 'applied' ? -1 : 1)
  );
}

/** A join token row: a sha256 hash, a bounded printable label, an optional node name, sane times. */
export function checkJoinToken(token: NewJoinToken): void {
  checkTokenHash('join token', token.tokenHash);
  if (typeof token.label !== 'string' || token.label.length > 200 || /[\p{Cc}\p{Cf}]/u.test(token.label)) bad('join token label must be at most 200 printable characters');
  if (token.nodeName !== null && !/^[A-Za-z0-9._-]{1,64}$/.test(token.nodeName)) bad(`join token node name ${JSON.stringify(token.nodeName)} is not a valid node name`);
  checkEpochMs('join token createdAt', token.createdAt);
  if (token.expiresAt !== null) checkEpochMs('join token expiresAt', token.expiresAt);
}

export function checkTokenHash(what: string, hash: string): void {
  if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) bad(`${what} hash must be 64 lowercase hex digits`);
}
