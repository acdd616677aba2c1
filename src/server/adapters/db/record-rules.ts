// What a TrainingRepository accepts, checked before anything is written. Shared by the Prisma repository and
// the in-memory fake (tests/support/fake-repository.ts) so both refuse the same inputs with the same codes.
//
// Why these rules: SQLite stores NaN as NULL (a NOT NULL column then fails with an unhelpful message) and
// PostgreSQL `integer` columns are 32-bit, so a value that works in one database fails in the other. Checking
// here gives one clear error on every backend, and the fake makes service tests hit it too.

import { HyperGpuError } from '../../core/errors';
import type {
  CheckpointRecord,
  ContributionRecord,
  MetricPoint,
  NodeCapabilities,
  RoundSummary,
  SessionSnapshot,
  SessionState,
} from '../../core/types';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

export const SESSION_STATES: readonly SessionState[] = ['idle', 'running', 'paused', 'stopped', 'completed', 'failed'];
export const RESUMABLE_STATES: readonly SessionState[] = ['running', 'paused'];

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

export function checkSession(session: SessionSnapshot): void {
  const at = `session ${session.id}`;
  int32(`${at} id`, session.id);
  if (!SESSION_STATES.includes(session.state)) bad(`${at} state ${String(session.state)} is not a session state`);
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
}

export function checkContribution(c: ContributionRecord): void {
  const at = `session ${c.sessionId} round ${c.round} node ${c.nodeId} contribution`;
  int32(`${at} sessionId`, c.sessionId);
  int32(`${at} round`, c.round);
  int32(`${at} nodeId`, c.nodeId);
  int32(`${at} attempt`, c.attempt);
  int32(`${at} samples`, c.samples);
  int53(`${at} checksum`, c.checksum);
  finite(`${at} trainLoss`, c.trainLoss);
  int53(`${at} receivedAt`, c.receivedAt);
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

/** Order of listContributions: by round, then arrival, then node; applied before rejected on a tie. */
export function compareContributions(a: ContributionRecord, b: ContributionRecord): number {
  return (
    a.round - b.round ||
    a.receivedAt - b.receivedAt ||
    a.nodeId - b.nodeId ||
    (a.status === b.status ? 0 : a.status === 'applied' ? -1 : 1)
  );
}
