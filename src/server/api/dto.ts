// Output schemas of the API: what every procedure returns, over tRPC and REST alike. Each schema mirrors a
// domain type (core/types.ts, core/events.ts, services/ledger.ts); the checks at the bottom of this file fail
// the build when the two drift apart, so a field added to the domain must be added here, on purpose.
//
// Outputs are checked on every response, so these schemas describe shape (types, nullability, enums) and
// nothing costlier: no regexes, no refinements, no integer checks (with z.int() on the four counters of a
// metric point, checking 1,000 points took about twice as long). Measurements (losses, accuracies, throughput)
// also accept NaN and infinities: a diverging model or a hostile agent's loss must not turn a read into a 500
// (JSON writes non-finite numbers as null, as it always did). bench/api-dto.ts measures what the checks cost.
import { z } from 'zod';
import type { CoordinatorEvent, DashboardSnapshot, LogLine, StatusSnapshot } from '../core/events';
import type {
  CheckpointRecord,
  ContributionRecord,
  DataCursorRecord,
  MetricPoint,
  NodeCapabilities,
  NodeSnapshot,
  OptimizerConfig,
  RoundSummary,
  SessionConfig,
  SessionEvent,
  SessionSnapshot,
  RoundTimelineEntry,
} from '../core/types';
import type { EpochCoverage, LedgerReport } from '../core/ledger';

/** Ids, rounds, versions and counts (finite numbers). */
const int = z.number();
/** Epoch milliseconds and durations (finite numbers). */
const time = z.number();
/**
 * A measurement: any number, NaN and infinities included (see above). A union, not z.custom: zod compiles the
 * union's first branch into its fast path, where a custom check costs a function call per field (3x slower).
 */
const measure = z.union([z.number(), z.nan(), z.literal([Infinity, -Infinity])]);

export const sessionState = z.enum(['idle', 'running', 'paused', 'stopped', 'completed', 'failed']);

export const optimizerConfig = z.object({
  name: z.enum(['sgd', 'adam']),
  learningRate: z.number(),
  momentum: z.number(),
  beta1: z.number(),
  beta2: z.number(),
  epsilon: z.number(),
});

export const sessionConfig = z.object({
  model: z.enum(['mlp', 'cnn', 'mlp2nn']),
  dataset: z.string(),
  optimizer: optimizerConfig,
  batchSize: int,
  maxRounds: int.nullable(),
  targetAccuracy: z.number().nullable(),
  evalEvery: int,
  checkpointEvery: int,
  seed: int,
  roundTimeoutMs: int,
  minUpdates: int,
  minCompletion: z.number(),
  maxSamples: int.nullable(),
  maxUpdateNorm: z.number(),
  aggregation: z
    .discriminatedUnion('rule', [
      z.object({ rule: z.literal('mean') }),
      z.object({ rule: z.literal('trimmed-mean'), trimFraction: z.number() }),
      z.object({ rule: z.literal('median') }),
      z.object({ rule: z.literal('multi-krum'), byzantine: int }),
    ])
    .optional(),
  globalBatch: int.optional(),
  clipFactor: z.number().optional(),
  initFrom: z.object({ sessionId: int, round: int }).optional(),
  localSteps: z.union([int, z.literal('auto')]).optional(),
  overlap: z.boolean().optional(),
  outerOptimizer: z.object({ learningRate: z.number(), momentum: z.number() }).optional(),
  codec: z.enum(['float32', 'fp16', 'int8', 'top-k', 'auto']).optional(),
  topKFraction: z.number().optional(),
  rewards: z.object({ ratePerSample: z.string(), epochBudget: z.string().nullable() }).optional(),
});

export const sessionSnapshot = z.object({
  id: int,
  state: sessionState,
  config: sessionConfig,
  round: int,
  modelVersion: int,
  epoch: int,
  totalSamples: int,
  startedAt: time,
  endedAt: time.nullable(),
  lastTestAccuracy: measure.nullable(),
  lastTestLoss: measure.nullable(),
  lastRoundDurationMs: time.nullable(),
  samplesPerSecond: measure,
  message: z.string().nullable(),
});

export const nodeCapabilities = z.object({
  backend: z.string(),
  device: z.string(),
  samplesPerSecond: z.number(),
  agentVersion: z.string(),
  hostname: z.string(),
});

export const nodeSnapshot = z.object({
  id: int,
  name: z.string(),
  status: z.enum(['connecting', 'idle', 'training', 'failed', 'left']),
  statusReason: z.string().nullable(),
  capabilities: nodeCapabilities,
  joinedAt: time,
  lastHeartbeatAt: time,
  acceptedContributions: int,
  rejectedContributions: int,
  acceptedSamples: int,
  forfeitedEpochs: z.array(int).optional(),
  samplesPerSecond: measure,
  rttMs: z.number().nullable(),
  uploadBytesPerSecond: z.number().nullable(),
  outlierScore: z.number().nullable(),
  computeShare: z.number().nullable().optional(),
  currentRound: int.nullable(),
  statusChangedAt: time,
});

export const statusSnapshot = z.object({
  state: sessionState,
  sessionId: int.nullable(),
  round: int,
  modelVersion: int,
  nodes: z.object({ total: int, active: int, training: int, failed: int }),
  session: sessionSnapshot.nullable(),
  startedAt: time,
  now: time,
});

export const metricPoint = z.object({
  round: int,
  at: time,
  trainLoss: measure,
  testLoss: measure.nullable(),
  testAccuracy: measure.nullable(),
  samples: int,
  totalSamples: int,
  samplesPerSecond: measure,
  roundDurationMs: time,
  nodes: int,
});

export const dataCursor = z.object({
  epoch: int,
  position: int,
  pending: z.array(z.object({ epoch: int, start: int, count: int })),
});

export const roundSummary = z.object({
  sessionId: int,
  round: int,
  modelVersion: int,
  openedAt: time,
  closedAt: time,
  applied: z.boolean(),
  updates: int,
  samples: int,
  trainLoss: measure,
  failures: int,
  totalSamples: int,
  cursor: dataCursor,
});

export const contributionRecord = z.object({
  sessionId: int,
  round: int,
  nodeId: int,
  attempt: int,
  samples: int,
  epoch: int,
  shardStart: int,
  shardCount: int,
  checksum: int,
  trainLoss: measure,
  status: z.enum(['applied', 'rejected']),
  reason: z.string().nullable(),
  receivedAt: time,
  /** Applied rows of a scored round: distance from the aggregate over the round's median distance (1: typical). */
  outlierScore: z.number().optional(),
  /** Applied rows scaled down before aggregation (norm clipping): the factor, in [0, 1); absent: counted as sent. */
  scale: z.number().optional(),
  /** Rejected rows only: how many identical rejections (same round, node and reason) the row stands for. */
  count: int.optional(),
});

export const checkpointRecord = z.object({
  sessionId: int,
  round: int,
  modelVersion: int,
  sha256: z.string(),
  path: z.string(),
  bytes: int,
  createdAt: time,
});

export const sessionEvent = z.object({
  sessionId: int,
  at: time,
  round: int,
  kind: z.enum([
    'session-started',
    'session-paused',
    'session-resumed',
    'session-stopped',
    'session-completed',
    'session-failed',
    'coordinator-restarted',
    'node-joined',
    'node-rejoined',
    'node-failed',
    'node-left',
    'round-not-applied',
    'node-benched',
    'node-audit-failed',
  ]),
  message: z.string(),
  nodeId: int.nullable(),
  detail: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()])).nullable(),
});

export const epochCoverage = z.object({ epoch: int, covered: int, overlapping: int, pending: int, skipped: int });

export const ledgerReport = z.object({
  ok: z.boolean(),
  problems: z.array(z.string()),
  sessionId: int,
  state: z.string(),
  appliedRounds: int,
  modelVersion: int,
  appliedUpdates: int,
  appliedSamples: int,
  roundSamples: int,
  modelSamples: int,
  duplicates: int,
  rejectedUpdates: int,
  rejectedByReason: z.record(z.string(), int),
  epochs: z.array(epochCoverage),
});

export const logLine = z.object({ at: time, level: z.enum(['info', 'warn', 'error']), message: z.string() });

export const coordinatorEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('status'), status: statusSnapshot }),
  z.object({ type: z.literal('metric'), sessionId: int, metric: metricPoint }),
  z.object({ type: z.literal('node'), node: nodeSnapshot }),
  z.object({ type: z.literal('log'), line: logLine }),
  z.object({ type: z.literal('timeline'), event: sessionEvent }),
]);

export const dashboardSnapshot = z.object({
  status: statusSnapshot,
  nodes: z.array(nodeSnapshot),
  metrics: z.array(metricPoint),
  logs: z.array(logLine),
  timeline: z.array(sessionEvent),
});

/** What the live dashboard subscription yields: one snapshot, then every coordinator event. */
export const liveMessage = z.union([z.object({ type: z.literal('snapshot'), snapshot: dashboardSnapshot }), coordinatorEvent]);
export type LiveMessage = z.infer<typeof liveMessage>;

/**
 * training.metrics: the latest point and the history, plus the figures the original REST design reported at
 * the top level (loss of the latest round, accuracy and test loss of the last evaluation).
 */
export const metricsReport = z.object({
  sessionId: int.nullable(),
  round: int,
  loss: measure.nullable(),
  accuracy: measure.nullable(),
  testLoss: measure.nullable(),
  samples: int,
  samplesPerSecond: measure,
  latest: metricPoint.nullable(),
  history: z.array(metricPoint),
});
export type MetricsReport = z.infer<typeof metricsReport>;

export const nodeActivity = z.object({
  node: nodeSnapshot,
  sessionId: int.nullable(),
  accepted: int,
  clipped: int,
  rejected: int,
  rejectedByReason: z.record(z.string(), int),
  contributions: z.array(
    z.object({
      round: int,
      receivedAt: time,
      latencyMs: time.nullable(),
      samples: int,
      samplesPerSecond: measure.nullable(),
      status: z.enum(['applied', 'rejected']),
      reason: z.string().nullable(),
      count: int,
      scale: z.number().nullable(),
    }),
  ),
  failures: z.array(sessionEvent),
});

export const roundTimelineEntry = z.object({
  round: int,
  openedAt: time,
  durationMs: time,
  applied: z.boolean(),
  assigned: int,
  failures: int,
  cutoffMs: time.nullable(),
  deadlineMs: time,
  arrivals: z.array(z.object({ nodeId: int, atMs: time, status: z.enum(['applied', 'rejected']), reason: z.string().nullable(), late: z.boolean() })),
});

/** model.json of a downloaded model (TensorFlow.js layers format; the topology is tfjs-layers' own shape). */
export const layersModelJson = z.object({
  format: z.literal('layers-model'),
  generatedBy: z.string(),
  convertedBy: z.null(),
  modelTopology: z.record(z.string(), z.unknown()),
  weightsManifest: z.array(
    z.object({ paths: z.array(z.string()), weights: z.array(z.object({ name: z.string(), shape: z.array(int), dtype: z.literal('float32') })) }),
  ),
  userDefinedMetadata: z.record(z.string(), z.unknown()).optional(),
});

/** The weights file's name next to model.json (tfjs resolves it against model.json's URL or folder). */
export const WEIGHTS_FILE = 'weights.bin';

/** Bytes answered as application/octet-stream (REST only). */
export const binaryBody = z.custom<Uint8Array>((value) => value instanceof Uint8Array, 'bytes');
export type LayersModelJson = z.infer<typeof layersModelJson>;

export const componentReport = z.object({
  name: z.string(),
  status: z.enum(['up', 'down', 'idle']),
  required: z.boolean(),
  detail: z.string().nullable(),
  latencyMs: z.number(),
});

/** 'down' (HTTP 503): a component the coordinator needs is down; 'degraded': an optional one is. */
export const healthReport = z.object({
  status: z.enum(['ok', 'degraded', 'down']),
  version: z.string(),
  uptimeSeconds: z.number(),
  state: sessionState,
  components: z.array(componentReport),
});
export type HealthReport = z.infer<typeof healthReport>;

// ---- The DTOs and the domain types are the same types: the build fails here when either side moves. ----
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
/** A readable alias: `Same<typeof schema, DomainType>` is `true` only if the parsed type is exactly the domain type. */
type Same<S extends z.ZodType, T> = Equal<z.output<S>, T> extends true ? (Equal<z.input<S>, T> extends true ? true : false) : false;

export type DtoMatchesDomain = [
  Expect<Same<typeof optimizerConfig, OptimizerConfig>>,
  Expect<Same<typeof sessionConfig, SessionConfig>>,
  Expect<Same<typeof sessionSnapshot, SessionSnapshot>>,
  Expect<Same<typeof nodeCapabilities, NodeCapabilities>>,
  Expect<Same<typeof nodeSnapshot, NodeSnapshot>>,
  Expect<Same<typeof statusSnapshot, StatusSnapshot>>,
  Expect<Same<typeof metricPoint, MetricPoint>>,
  Expect<Same<typeof dataCursor, DataCursorRecord>>,
  Expect<Same<typeof roundSummary, RoundSummary>>,
  Expect<Same<typeof contributionRecord, ContributionRecord>>,
  Expect<Same<typeof checkpointRecord, CheckpointRecord>>,
  Expect<Same<typeof sessionEvent, SessionEvent>>,
  Expect<Same<typeof epochCoverage, EpochCoverage>>,
  Expect<Same<typeof ledgerReport, LedgerReport>>,
  Expect<Same<typeof logLine, LogLine>>,
  Expect<Same<typeof coordinatorEvent, CoordinatorEvent>>,
  Expect<Same<typeof dashboardSnapshot, DashboardSnapshot>>,
  Expect<Same<typeof roundTimelineEntry, RoundTimelineEntry>>,
  Expect<Same<typeof liveMessage, { type: 'snapshot'; snapshot: DashboardSnapshot } | CoordinatorEvent>>,
];
