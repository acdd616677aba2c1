// What an outbox event may hold: checked when it is written (BAD_REQUEST: the caller's mistake) and again when
// it is read back (CORRUPT_RECORD: the stored row is not what its writer checked). Shared by the Prisma
// repository and the in-memory fake, so both refuse the same events and store the same fields.
//
// Why read-side checks too: the outbox is folded by replays and consumers long after it was written, maybe by
// another build. A payload edited by hand or truncated must fail at the read with the event's id, not as an
// undefined deep inside evolve(). The builders below return a fresh object of exactly the type's fields, so
// extra properties on a caller's object are never stored, and a field added to a type without being added
// here is a compile error (the object literals must be complete).

import { HyperGpuError } from '../../../protocol/errors';
import type { CommittedEvent, CommittedEventKind } from '../../core/engine/committed';
import type { AggregationRule, DataCursorRecord, MetricPoint, ModelName, OptimizerConfig, OptimizerName, SessionConfig } from '../../core/types';
import { SESSION_STATES } from './record-rules';

type Fail = (message: string) => never;

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const MODELS: readonly ModelName[] = ['mlp', 'cnn', 'mlp2nn'];
const OPTIMIZERS: readonly OptimizerName[] = ['sgd', 'adam'];
const CREDIT_STATUSES = ['applied', 'rejected'] as const;

// A record over the union, so a new event kind without a builder below is a compile error.
const KINDS: Record<CommittedEventKind, true> = {
  'session-started': true,
  'round-committed': true,
  'node-credited': true,
  'epoch-closed': true,
  'epoch-audited': true,
  'session-state-changed': true,
};

export function isCommittedEventKind(kind: unknown): kind is CommittedEventKind {
  return typeof kind === 'string' && Object.hasOwn(KINDS, kind);
}

function object(fail: Fail, what: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${what} must be an object`);
  return value as Record<string, unknown>;
}

function int32(fail: Fail, what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) {
    fail(`${what} must be a 32-bit integer, got ${String(value)}`);
  }
  return (value as number) + 0; // -0 becomes 0, as JSON would store it
}

function int53(fail: Fail, what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail(`${what} must be a safe integer, got ${String(value)}`);
  return (value as number) + 0;
}

function finite(fail: Fail, what: string, value: unknown): number {
  // JSON writes NaN and ±Infinity as null: refused rather than read back as something else.
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(`${what} must be a finite number, got ${String(value)}`);
  return (value as number) + 0;
}

function text(fail: Fail, what: string, value: unknown): string {
  if (typeof value !== 'string') fail(`${what} must be a string`);
  return value as string;
}

function oneOf<T extends string>(fail: Fail, what: string, value: unknown, options: readonly T[]): T {
  if (!options.includes(value as T)) fail(`${what} must be one of ${options.join(', ')}, got ${String(value)}`);
  return value as T;
}

function bool(fail: Fail, what: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(`${what} must be true or false, got ${String(value)}`);
  return value as boolean;
}

function orNull<T>(value: unknown, read: (value: unknown) => T): T | null {
  return value === null ? null : read(value);
}

function optimizer(fail: Fail, what: string, value: unknown): OptimizerConfig {
  const o = object(fail, what, value);
  return {
    name: oneOf(fail, `${what}.name`, o.name, OPTIMIZERS),
    learningRate: finite(fail, `${what}.learningRate`, o.learningRate),
    momentum: finite(fail, `${what}.momentum`, o.momentum),
    beta1: finite(fail, `${what}.beta1`, o.beta1),
    beta2: finite(fail, `${what}.beta2`, o.beta2),
    epsilon: finite(fail, `${what}.epsilon`, o.epsilon),
  };
}

function sessionConfig(fail: Fail, what: string, value: unknown): SessionConfig {
  const o = object(fail, what, value);
  return {
    model: oneOf(fail, `${what}.model`, o.model, MODELS),
    dataset: text(fail, `${what}.dataset`, o.dataset),
    optimizer: optimizer(fail, `${what}.optimizer`, o.optimizer),
    batchSize: int53(fail, `${what}.batchSize`, o.batchSize),
    maxRounds: orNull(o.maxRounds, (v) => int53(fail, `${what}.maxRounds`, v)),
    targetAccuracy: orNull(o.targetAccuracy, (v) => finite(fail, `${what}.targetAccuracy`, v)),
    evalEvery: int53(fail, `${what}.evalEvery`, o.evalEvery),
    checkpointEvery: int53(fail, `${what}.checkpointEvery`, o.checkpointEvery),
    seed: int53(fail, `${what}.seed`, o.seed),
    roundTimeoutMs: int53(fail, `${what}.roundTimeoutMs`, o.roundTimeoutMs),
    minUpdates: int53(fail, `${what}.minUpdates`, o.minUpdates),
    minCompletion: finite(fail, `${what}.minCompletion`, o.minCompletion),
    maxSamples: orNull(o.maxSamples, (v) => int53(fail, `${what}.maxSamples`, v)),
    maxUpdateNorm: finite(fail, `${what}.maxUpdateNorm`, o.maxUpdateNorm),
    ...(o.aggregation === undefined ? {} : { aggregation: aggregationRule(fail, `${what}.aggregation`, o.aggregation) }),
    ...(o.globalBatch === undefined ? {} : { globalBatch: int53(fail, `${what}.globalBatch`, o.globalBatch) }),
    ...(o.clipFactor === undefined ? {} : { clipFactor: finite(fail, `${what}.clipFactor`, o.clipFactor) }),
    ...(o.rewards === undefined ? {} : { rewards: rewardPolicy(fail, `${what}.rewards`, o.rewards) }),
    ...(o.localSteps === undefined ? {} : { localSteps: o.localSteps === 'auto' ? ('auto' as const) : int53(fail, `${what}.localSteps`, o.localSteps) }),
    ...(o.overlap === undefined ? {} : { overlap: bool(fail, `${what}.overlap`, o.overlap) }),
    ...(o.outerOptimizer === undefined ? {} : { outerOptimizer: outerOptimizer(fail, `${what}.outerOptimizer`, o.outerOptimizer) }),
    ...(o.codec === undefined ? {} : { codec: oneOf(fail, `${what}.codec`, o.codec, CODEC_SETTINGS) }),
    ...(o.topKFraction === undefined ? {} : { topKFraction: finite(fail, `${what}.topKFraction`, o.topKFraction) }),
    ...(o.initFrom === undefined ? {} : { initFrom: checkpointRef(fail, `${what}.initFrom`, o.initFrom) }),
  };
}

const CODEC_SETTINGS = ['float32', 'fp16', 'int8', 'top-k', 'auto'] as const;

function outerOptimizer(fail: Fail, what: string, value: unknown): NonNullable<SessionConfig['outerOptimizer']> {
  const o = object(fail, what, value);
  return { learningRate: finite(fail, `${what}.learningRate`, o.learningRate), momentum: finite(fail, `${what}.momentum`, o.momentum) };
}

function checkpointRef(fail: Fail, what: string, value: unknown): NonNullable<SessionConfig['initFrom']> {
  const o = object(fail, what, value);
  return { sessionId: int53(fail, `${what}.sessionId`, o.sessionId), round: int53(fail, `${what}.round`, o.round) };
}

function rewardPolicy(fail: Fail, what: string, value: unknown): NonNullable<SessionConfig['rewards']> {
  const o = object(fail, what, value);
  const units = (field: string, v: unknown) => {
    if (typeof v !== 'string' || !/^\d{1,78}$/.test(v)) fail(`${what}.${field} must be base units as a decimal string`);
    return v as string;
  };
  return { ratePerSample: units('ratePerSample', o.ratePerSample), epochBudget: o.epochBudget === null ? null : units('epochBudget', o.epochBudget) };
}

function aggregationRule(fail: Fail, what: string, value: unknown): AggregationRule {
  const o = object(fail, what, value);
  switch (o.rule) {
    case 'mean':
      return { rule: 'mean' };
    case 'median':
      return { rule: 'median' };
    case 'trimmed-mean':
      return { rule: 'trimmed-mean', trimFraction: finite(fail, `${what}.trimFraction`, o.trimFraction) };
    case 'multi-krum':
      return { rule: 'multi-krum', byzantine: int32(fail, `${what}.byzantine`, o.byzantine) };
    default:
      return fail(`${what}.rule ${String(o.rule)} is not an aggregation rule`);
  }
}

function cursor(fail: Fail, what: string, value: unknown): DataCursorRecord {
  const o = object(fail, what, value);
  if (!Array.isArray(o.pending)) fail(`${what}.pending must be an array`);
  return {
    epoch: int32(fail, `${what}.epoch`, o.epoch),
    position: int32(fail, `${what}.position`, o.position),
    pending: (o.pending as unknown[]).map((item, i) => {
      const shard = object(fail, `${what}.pending[${i}]`, item);
      return {
        epoch: int32(fail, `${what}.pending[${i}].epoch`, shard.epoch),
        start: int32(fail, `${what}.pending[${i}].start`, shard.start),
        count: int32(fail, `${what}.pending[${i}].count`, shard.count),
      };
    }),
  };
}

function metric(fail: Fail, what: string, value: unknown): MetricPoint {
  const o = object(fail, what, value);
  return {
    round: int32(fail, `${what}.round`, o.round),
    at: int53(fail, `${what}.at`, o.at),
    trainLoss: finite(fail, `${what}.trainLoss`, o.trainLoss),
    testLoss: orNull(o.testLoss, (v) => finite(fail, `${what}.testLoss`, v)),
    testAccuracy: orNull(o.testAccuracy, (v) => finite(fail, `${what}.testAccuracy`, v)),
    samples: int32(fail, `${what}.samples`, o.samples),
    totalSamples: int53(fail, `${what}.totalSamples`, o.totalSamples),
    samplesPerSecond: finite(fail, `${what}.samplesPerSecond`, o.samplesPerSecond),
    roundDurationMs: int32(fail, `${what}.roundDurationMs`, o.roundDurationMs),
    nodes: int32(fail, `${what}.nodes`, o.nodes),
  };
}

/** A fresh event holding exactly the fields of its kind, each checked; `fail` says how a bad one is reported. */
function committedEvent(fail: Fail, value: unknown): CommittedEvent {
  const o = object(fail, 'event', value);
  if (!isCommittedEventKind(o.kind)) fail(`kind ${String(o.kind)} is not a committed event kind`);
  const kind = o.kind as CommittedEventKind;
  const sessionId = int32(fail, `${kind}.sessionId`, o.sessionId);
  switch (kind) {
    case 'session-started':
      return {
        kind,
        sessionId,
        at: int53(fail, `${kind}.at`, o.at),
        config: sessionConfig(fail, `${kind}.config`, o.config),
        trainSize: int53(fail, `${kind}.trainSize`, o.trainSize),
        paramCount: int53(fail, `${kind}.paramCount`, o.paramCount),
      };
    case 'round-committed':
      if (typeof o.applied !== 'boolean') fail(`${kind}.applied must be a boolean`);
      return {
        kind,
        sessionId,
        round: int32(fail, `${kind}.round`, o.round),
        applied: o.applied as boolean,
        modelVersion: int32(fail, `${kind}.modelVersion`, o.modelVersion),
        samples: int32(fail, `${kind}.samples`, o.samples),
        totalSamples: int53(fail, `${kind}.totalSamples`, o.totalSamples),
        epoch: int32(fail, `${kind}.epoch`, o.epoch),
        cursor: cursor(fail, `${kind}.cursor`, o.cursor),
        metric: metric(fail, `${kind}.metric`, o.metric),
      };
    case 'node-credited':
      return {
        kind,
        sessionId,
        round: int32(fail, `${kind}.round`, o.round),
        nodeId: int32(fail, `${kind}.nodeId`, o.nodeId),
        status: oneOf(fail, `${kind}.status`, o.status, CREDIT_STATUSES),
        samples: int32(fail, `${kind}.samples`, o.samples),
        ...(o.count === undefined ? {} : { count: int32(fail, `${kind}.count`, o.count) }),
      };
    case 'epoch-closed':
      return { kind, sessionId, epoch: int32(fail, `${kind}.epoch`, o.epoch), round: int32(fail, `${kind}.round`, o.round) };
    case 'epoch-audited': {
      if (!Array.isArray(o.forfeitedNodeIds)) fail(`${kind}.forfeitedNodeIds must be an array`);
      return {
        kind,
        sessionId,
        epoch: int32(fail, `${kind}.epoch`, o.epoch),
        forfeitedNodeIds: (o.forfeitedNodeIds as unknown[]).map((v, i) => int32(fail, `${kind}.forfeitedNodeIds[${i}]`, v)),
      };
    }
    case 'session-state-changed':
      return {
        kind,
        sessionId,
        at: int53(fail, `${kind}.at`, o.at),
        state: oneOf(fail, `${kind}.state`, o.state, SESSION_STATES),
        message: orNull(o.message, (v) => text(fail, `${kind}.message`, v)),
        endedAt: orNull(o.endedAt, (v) => int53(fail, `${kind}.endedAt`, v)),
      };
  }
}

/**
 * The outbox events of one write, checked before anything is written, as they will be stored: fresh objects
 * with exactly their own fields. Throws BAD_REQUEST naming the event's place in the list.
 */
export function storedOutboxEvents(events: readonly CommittedEvent[] | undefined): CommittedEvent[] {
  if (events === undefined) return [];
  if (!Array.isArray(events)) throw new HyperGpuError('BAD_REQUEST', 'outbox must be an array of committed events');
  return events.map((event, i) =>
    committedEvent((message) => {
      throw new HyperGpuError('BAD_REQUEST', `outbox event ${i}: ${message}`);
    }, event),
  );
}

/**
 * An outbox row read back: the payload parsed and checked, and the kind and sessionId columns matching it.
 * Throws CORRUPT_RECORD with the row's id, so a damaged row is found at the read that meets it.
 */
export function readOutboxRow(id: number, sessionIdColumn: number | null, kindColumn: string, payload: string): CommittedEvent {
  const fail: Fail = (message) => {
    throw new HyperGpuError('CORRUPT_RECORD', `outbox event ${id} is corrupt: ${message}`);
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch (error) {
    fail(`payload is not JSON (${(error as Error).message})`);
  }
  const event = committedEvent(fail, parsed);
  if (event.kind !== kindColumn) fail(`kind column says ${kindColumn}, payload says ${event.kind}`);
  if (event.sessionId !== sessionIdColumn) fail(`sessionId column says ${String(sessionIdColumn)}, payload says ${event.sessionId}`);
  return event;
}

function bad(message: string): never {
  throw new HyperGpuError('BAD_REQUEST', message);
}

export function checkOutboxRead(afterId: number, limit: number): void {
  int32(bad, 'readOutbox afterId', afterId);
  int32(bad, 'readOutbox limit', limit);
  if (limit < 0) bad(`readOutbox limit must not be negative, got ${limit}`);
}

export function checkOutboxConsumer(consumer: string): void {
  if (typeof consumer !== 'string' || consumer.length === 0) bad('outbox consumer must be a non-empty string');
}

export function checkOutboxPosition(consumer: string, position: number): void {
  checkOutboxConsumer(consumer);
  int32(bad, `outbox cursor ${consumer} position`, position);
  if (position < 0) bad(`outbox cursor ${consumer} position must not be negative, got ${position}`);
}

export function checkPruneUpTo(upToId: number): void {
  int32(bad, 'pruneOutbox upToId', upToId);
}

/** A session id chosen by the caller (the engine allocates them): a positive 32-bit integer. */
export function checkExplicitSessionId(id: number): void {
  int32(bad, 'session id', id);
  if (id < 1) bad(`session id must be positive, got ${id}`);
}
