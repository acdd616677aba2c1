// Domain types shared by the coordinator core, its services, adapters and the API.
// Pure data: no classes with I/O, no Date objects (times are epoch milliseconds from the clock port).
import type { CodecName } from '../../protocol/codecs';
import type { Assignment, NodeCapabilities } from '../../protocol/messages';
import type { OuterOptimizerConfig } from './optimizer';

export type { Assignment, NodeCapabilities };

export type ModelName = 'mlp' | 'cnn' | 'mlp2nn';
export type OptimizerName = 'sgd' | 'adam';
export type SessionState = 'idle' | 'running' | 'paused' | 'stopped' | 'completed' | 'failed';

export interface OptimizerConfig {
  name: OptimizerName;
  learningRate: number;
  /** SGD momentum (ignored by Adam). */
  momentum: number;
  /** Adam betas and epsilon (ignored by SGD). */
  beta1: number;
  beta2: number;
  epsilon: number;
}

export interface SessionConfig {
  model: ModelName;
  /** A registered dataset's id ('mnist' or a name given with --dataset name=path); never a path. */
  dataset: string;
  optimizer: OptimizerConfig;
  /** Samples each node processes per round (its gradient is the mean over them). */
  batchSize: number;
  /** Stop after this many rounds (null: no round limit). */
  maxRounds: number | null;
  /** Stop once test accuracy reaches this (null: no accuracy target). */
  targetAccuracy: number | null;
  /** Evaluate on the test set every K rounds. */
  evalEvery: number;
  /** Write a checkpoint every K rounds. */
  checkpointEvery: number;
  /** Seed for initial weights and the epoch permutation. */
  seed: number;
  /** A round waits at most this long for updates before it closes with what it has. */
  roundTimeoutMs: number;
  /** A round needs at least this many updates to be applied. */
  minUpdates: number;
  /** ...and at least this fraction of its assigned nodes (quorum); below it the round is not applied. */
  minCompletion: number;
  /** End the session once this many samples were applied (a sample budget; null: no budget). */
  maxSamples: number | null;
  /** Updates whose L2 norm exceeds this are rejected as absurd. */
  maxUpdateNorm: number;
  /**
   * How a round's updates are combined; absent means the sample-weighted mean. The robust rules bound what a
   * minority of bad updates can do to the model (core/engine/strategy.ts says how many each tolerates).
   */
  aggregation?: AggregationRule;
  /**
   * Work sized to capacity: the samples of one optimizer step, shared among the round's nodes in proportion to
   * their measured speed (core/engine/work-sizing.ts). Absent: every node trains `batchSize` (the step grows
   * with the node count).
   */
  globalBatch?: number;
  /**
   * Norm clipping before aggregation: an update longer than clipFactor x the median norm of the round's updates
   * is scaled down to that length, so no single update moves the model further than a typical one. Absent: none.
   */
  clipFactor?: number;
  /**
   * The checkpoint this session's model starts from (its weights; the optimizer starts fresh); absent: from the
   * seed. Kept in the config so that recovery can rebuild a session that crashed before its first checkpoint.
   */
  initFrom?: { sessionId: number; round: number };
  /**
   * Local steps (DiLoCo / FedAvg): each node takes H inner optimizer steps of `batchSize` samples with the session's
   * optimizer and sends start minus end weights; the coordinator applies `outerOptimizer` to their aggregate.
   * Absent or 1: synchronous gradient rounds (the coordinator applies the session's optimizer to the mean
   * gradient). 'auto': H chosen each round from measured compute and communication times (core/adaptive.ts).
   */
  localSteps?: number | 'auto';
  /**
   * Overlap (local-steps sessions only): when a round opens, each node is also reserved its next round's shard, and
   * trains it from its own end weights while its update travels and the next model comes back; it re-bases onto
   * that model when it arrives (core/engine/lookahead.ts, src/agent/lookahead.ts). Absent or false: an agent idles
   * for the round trip.
   */
  overlap?: boolean;
  /** Outer optimizer of local-steps rounds (SGD with Nesterov momentum); DiLoCo's lr 0.7, momentum 0.9 by default. */
  outerOptimizer?: OuterOptimizerConfig;
  /** How updates travel: a codec for every node, or 'auto' (per node, from its measured upload bandwidth). Absent: float32. */
  codec?: CodecName | 'auto';
  /** top-k: the share of values sent (default 0.01). */
  topKFraction?: number;
  /**
   * What an accepted sample pays, in base units as decimal strings (JSON has no bigint): a rate per sample and a
   * budget per epoch (null: uncapped). Absent: the coordinator's default (HYPERGPU_REWARD_PER_SAMPLE, ...).
   */
  rewards?: { ratePerSample: string; epochBudget: string | null };
}

export type AggregationRule =
  | { rule: 'mean' }
  /** Per coordinate, drop this fraction of the updates at each end (at least one when it rounds to none), average the rest. */
  | { rule: 'trimmed-mean'; trimFraction: number }
  | { rule: 'median' }
  /** Multi-Krum tolerating `byzantine` bad updates per round: keeps the N - byzantine most central ones. */
  | { rule: 'multi-krum'; byzantine: number };

export type NodeStatus = 'connecting' | 'idle' | 'training' | 'failed' | 'left';


export interface NodeSnapshot {
  id: number;
  name: string;
  status: NodeStatus;
  statusReason: string | null;
  capabilities: NodeCapabilities;
  joinedAt: number;
  lastHeartbeatAt: number;
  /** Updates of this node accepted into applied rounds in the current session. */
  acceptedContributions: number;
  rejectedContributions: number;
  /** Samples of this node accepted into applied rounds in the current session (integer). */
  acceptedSamples: number;
  /** Epochs whose credit the node forfeited by failing an audit (flagged in the node table). */
  forfeitedEpochs?: number[];
  /** Recent measured throughput (samples/s): calibration at join, then each delivered round, smoothed. */
  samplesPerSecond: number;
  /** Round-trip time of its link (ms, smoothed); null until measured. */
  rttMs: number | null;
  /** Upload bandwidth (bytes/s, smoothed) from its update frames' transfer times; null until measured. */
  uploadBytesPerSecond: number | null;
  /**
   * Its update's distance from the aggregate in the last round it delivered, over the median distance of that
   * round's updates (1: typical; 5: five times further out than most). Null until it delivered a scored round.
   */
  outlierScore: number | null;
  /** Time computing over wall time, measured by the agent over its recent rounds (null: not reported yet). */
  computeShare?: number | null;
  currentRound: number | null;
  /** When status last changed (epoch ms): for a failure, the moment it was detected. */
  statusChangedAt: number;
}


export interface MetricPoint {
  round: number;
  at: number;
  /** Mean training loss reported by nodes this round (sample weighted). */
  trainLoss: number;
  /** Test-set figures, present on evaluation rounds. */
  testLoss: number | null;
  testAccuracy: number | null;
  samples: number;
  totalSamples: number;
  samplesPerSecond: number;
  roundDurationMs: number;
  nodes: number;
}

/** Where the session stands in its pass over the data (see core/shards.ts). */
export interface DataCursorRecord {
  epoch: number;
  position: number;
  pending: { epoch: number; start: number; count: number }[];
}

export interface RoundSummary {
  sessionId: number;
  round: number;
  /** Model version after this round (bumped only when applied). */
  modelVersion: number;
  openedAt: number;
  closedAt: number;
  applied: boolean;
  updates: number;
  samples: number;
  trainLoss: number;
  failures: number;
  /** Session total of applied samples after this round. */
  totalSamples: number;
  /** Data cursor after this round: recovery resumes the data exactly here. */
  cursor: DataCursorRecord;
}

export type SessionEventKind =
  | 'session-started'
  | 'session-paused'
  | 'session-resumed'
  | 'session-stopped'
  | 'session-completed'
  | 'session-failed'
  | 'coordinator-restarted'
  | 'node-joined'
  | 'node-rejoined'
  | 'node-failed'
  | 'node-left'
  | 'round-not-applied'
  | 'node-benched'
  | 'node-audit-failed';

/** The session timeline: durable, shown on the dashboard, survives coordinator restarts. */
export interface SessionEvent {
  sessionId: number;
  at: number;
  round: number;
  kind: SessionEventKind;
  message: string;
  nodeId: number | null;
  detail: Record<string, number | string | boolean | null> | null;
}

export interface SessionSnapshot {
  id: number;
  state: SessionState;
  config: SessionConfig;
  round: number;
  modelVersion: number;
  epoch: number;
  totalSamples: number;
  startedAt: number;
  endedAt: number | null;
  lastTestAccuracy: number | null;
  lastTestLoss: number | null;
  lastRoundDurationMs: number | null;
  samplesPerSecond: number;
  message: string | null;
}

export interface ContributionRecord {
  sessionId: number;
  round: number;
  nodeId: number;
  attempt: number;
  samples: number;
  /** The shard behind the samples (epoch permutation slice); zeros for rejected updates. */
  epoch: number;
  shardStart: number;
  shardCount: number;
  checksum: number;
  trainLoss: number;
  status: 'applied' | 'rejected';
  reason: string | null;
  /** When the first of them arrived. */
  receivedAt: number;
  /** Applied rows of a scored round: distance from the aggregate over the round's median distance (1: typical). */
  outlierScore?: number;
  /**
   * Applied rows whose update was scaled down before it was aggregated (norm clipping: the session's clipFactor,
   * or the engine's norm screen when it was over 10x the recent median): the factor, in [0, 1) (0 when clipFactor
   * met a round whose median norm was 0). Its samples are credited in full either way. Absent: counted as sent.
   */
  scale?: number;
  /**
   * Rejected rows only: how many identical rejections (same round, node and reason) this row stands for.
   * Absent means one. A flood of bad frames costs one row per round, not one per frame.
   */
  count?: number;
}

export interface CheckpointRecord {
  sessionId: number;
  round: number;
  modelVersion: number;
  sha256: string;
  path: string;
  bytes: number;
  createdAt: number;
}

export const DEFAULT_OPTIMIZER: Record<OptimizerName, OptimizerConfig> = {
  sgd: { name: 'sgd', learningRate: 0.05, momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  adam: { name: 'adam', learningRate: 0.001, momentum: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
};

// ---- The console's per-round view (derived in core/console-views.ts; the page renders it) ----

export interface RoundArrival {
  nodeId: number;
  /** Milliseconds after the round opened. */
  atMs: number;
  status: 'applied' | 'rejected';
  reason: string | null;
  /** After the straggler cut-off, or rejected as stale or late. */
  late: boolean;
}

export interface RoundTimelineEntry {
  round: number;
  openedAt: number;
  durationMs: number;
  applied: boolean;
  assigned: number;
  failures: number;
  /** The straggler cut-off, ms after the opening (derived, see the header); null before half delivered. */
  cutoffMs: number | null;
  /** The hard deadline, ms after the opening (derived, see the header). */
  deadlineMs: number;
  arrivals: RoundArrival[];
}
