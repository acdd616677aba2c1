// Ports: what the coordinator needs from the outside world. Services receive these; adapters implement them.
// Every port has a fake in tests/support and the real adapter passes the same conformance tests.

import type { PayloadStats } from '../../protocol/frame';
import type { CommittedEvent, OutboxRecord } from './engine/committed';
import type { CoordinatorEvent } from './events';
import type { OptimizerState, OuterStepRule } from './optimizer';
import type {
  CheckpointRecord,
  ContributionRecord,
  MetricPoint,
  ModelName,
  NodeCapabilities,
  RoundSummary,
  SessionConfig,
  SessionEvent,
  SessionSnapshot,
} from './types';

/** Issues node secrets and hashes them (random bytes and sha256 in production; deterministic in tests). */
export interface Credentials {
  issue(): string;
  hash(token: string): string;
  /** A random 32-bit seed (the engine derives its round nonces from it, so a restart never reuses one). */
  seed(): number;
}

/** The models the coordinator can train: their size and their seeded initial weights. */
export interface ModelCatalog {
  paramCount(model: ModelName): number;
  initialParams(model: ModelName, seed: number): Float32Array;
  /**
   * The model as TensorFlow.js layers files (model.json naming `weightsPath`, and the weights), for downloads.
   * Absent in a catalogue that cannot export (test fakes).
   */
  exportLayers?(model: ModelName, params: Float32Array, options: { weightsPath: string; metadata?: Record<string, unknown> }): ExportedModel;
}

/** A trained model as files a user can load: TensorFlow.js layers format. */
export interface ExportedModel {
  modelJson: Record<string, unknown>;
  weights: Uint8Array;
}

/** Datasets the coordinator can hand out shards of. */
export interface DatasetCatalog {
  /** Sizes of a registered dataset; throws (with a message that names no path) for an unknown id. */
  describe(id: string): Promise<{ trainSize: number; testSize: number }>;
  /** Every registered dataset id with its sizes, or why it cannot be read. */
  list?(): Promise<DatasetListing[]>;
}

export type DatasetListing =
  | { id: string; trainSize: number; testSize: number; inputShape: number[] }
  | { id: string; error: string };

/** In-process publish/subscribe of live events (dashboard subscriptions, /ws clients, loggers). */
export interface EventPublisher {
  publish(event: CoordinatorEvent): void;
  subscribe(listener: (event: CoordinatorEvent) => void): () => void;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): () => void;
}

/** A page of a long session: the rounds after `afterRound`, at most `rounds` of them. */
export interface RoundRange {
  afterRound: number;
  rounds: number;
}

/** Durable storage of sessions, nodes, rounds, contributions, metrics and checkpoint rows. */
export interface TrainingRepository {
  /**
   * Creates a session row. `id` is the id the engine allocated (the highest id so far + 1); without it the
   * database picks one. `outbox` events are written in the same transaction.
   */
  createSession(config: SessionConfig, startedAt: number, options?: { id?: number; outbox?: CommittedEvent[] }): Promise<number>;
  /** Writes the session row, and the outbox events of the change in the same transaction. */
  updateSession(session: SessionSnapshot, outbox?: CommittedEvent[]): Promise<OutboxRecord[]>;
  /** The highest session id ever created (0 when none). */
  lastSessionId(): Promise<number>;
  getSession(id: number): Promise<SessionSnapshot | null>;
  /** Newest first. */
  listSessions(limit: number): Promise<SessionSnapshot[]>;
  /** The most recent session still marked running or paused (for resume after a coordinator restart). */
  findResumableSession(): Promise<SessionSnapshot | null>;

  /** Registration is idempotent on name: the same agent name gets the same node id back. */
  upsertNode(name: string, capabilities: NodeCapabilities, seenAt: number): Promise<number>;
  /** The id and token hash of a node name, or null for a name never registered. */
  nodeCredential(name: string): Promise<{ id: number; tokenHash: string | null } | null>;
  /**
   * Sets a node's token hash only while it is unset; false when another registration set one first (two
   * concurrent hellos for a new name: only one of them may be given the name's secret).
   */
  setNodeTokenHash(id: number, tokenHash: string): Promise<boolean>;
  /**
   * Deletes node rows never credited (no applied or rejected update) and not seen since `seenBefore` (epoch
   * ms): names taken by agents that came once and left go back to the pool. Returns how many.
   */
  pruneIdleNodes(seenBefore: number): Promise<number>;

  /** Stores a join token (by the sha256 of its secret); the record comes back with its id. */
  createJoinToken(token: NewJoinToken): Promise<JoinTokenRecord>;
  /** The join token with this secret hash, revoked or expired ones included; null for none. */
  joinTokenByHash(tokenHash: string): Promise<JoinTokenRecord | null>;
  /** Every join token, oldest first (no secrets: the hashes are not part of the record). */
  listJoinTokens(): Promise<JoinTokenRecord[]>;
  /** Marks a join token revoked (a second revoke keeps the first time); null for an unknown id. */
  revokeJoinToken(id: number, revokedAt: number): Promise<JoinTokenRecord | null>;

  /**
   * Records a closed round, its contributions, its metric and the session's new state in ONE transaction:
   * after a crash either all of them are there or none. Contributions are unique per (session, round, node):
   * recording the same round twice fails rather than double counting. Rejected contributions passed here
   * (e.g. updates of a round that missed its quorum) go to the rejection ledger in the same transaction.
   */
  recordRound(
    round: RoundSummary,
    contributions: ContributionRecord[],
    metric: MetricPoint | null,
    session: SessionSnapshot,
    outbox?: CommittedEvent[],
  ): Promise<OutboxRecord[]>;
  /** The most recent recorded round of a session (recovery restores its data cursor). */
  lastRound(sessionId: number): Promise<RoundSummary | null>;
  recordEvent(event: SessionEvent): Promise<void>;
  /** Oldest first; the newest `limit` events. */
  listEvents(sessionId: number, limit: number): Promise<SessionEvent[]>;
  /** Records a rejected update (applied ones are recorded with their round). */
  recordRejection(contribution: ContributionRecord, outbox?: CommittedEvent[]): Promise<OutboxRecord[]>;
  /** Fills in the test-set figures of a round's metric row once its (asynchronous) evaluation is done. */
  recordEvaluation(sessionId: number, round: number, testLoss: number, testAccuracy: number): Promise<void>;
  /** Oldest first; with a range, only those of rounds afterRound < round <= afterRound + rounds. */
  listContributions(sessionId: number, range?: RoundRange): Promise<ContributionRecord[]>;
  listRounds(sessionId: number, range?: RoundRange): Promise<RoundSummary[]>;
  listMetrics(sessionId: number, limit: number): Promise<MetricPoint[]>;

  /** Outbox rows with id > afterId, oldest first, at most `limit`. */
  readOutbox(afterId: number, limit: number): Promise<OutboxRecord[]>;
  /** A consumer's durable position in the outbox (0 for a consumer never seen). */
  outboxCursor(consumer: string): Promise<number>;
  saveOutboxCursor(consumer: string, position: number): Promise<void>;
  /** Deletes outbox rows with id <= upToId (every consumer is past them); returns how many. */
  pruneOutbox(upToId: number): Promise<number>;

  recordCheckpoint(checkpoint: CheckpointRecord): Promise<void>;
  latestCheckpoint(sessionId: number): Promise<CheckpointRecord | null>;
  listCheckpoints(sessionId: number): Promise<CheckpointRecord[]>;
  /** Deletes a session's checkpoint rows with round < beforeRound (retention); returns the rows deleted. */
  deleteCheckpointsBefore(sessionId: number, beforeRound: number): Promise<CheckpointRecord[]>;

  close(): Promise<void>;
}

/** An operator-issued credential that admits new agents; times are epoch ms. */
export interface JoinTokenRecord {
  id: number;
  label: string;
  /** Only this node name may join with it; null: any name (a pool token). */
  nodeName: string | null;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}

export interface NewJoinToken {
  tokenHash: string;
  label: string;
  nodeName: string | null;
  createdAt: number;
  expiresAt: number | null;
}

/** Model weights and optimizer state, serialised, stored in files addressed by their sha256. */
export interface CheckpointPayload {
  sessionId: number;
  round: number;
  modelVersion: number;
  params: Float32Array;
  /** Optimizer slots (momentum, or Adam's m and v) in the same flat layout as params. */
  optimizerState: Float32Array[];
  /** Optimizer step counter (Adam bias correction). */
  optimizerStep: number;
}

export interface CheckpointStore {
  /** Writes the payload; returns its sha256 (hex), the file path and the byte size. */
  write(payload: CheckpointPayload): Promise<{ sha256: string; path: string; bytes: number }>;
  /** Reads and verifies the sha256; throws when the file does not match. */
  read(path: string, sha256: string): Promise<CheckpointPayload>;
  /** Durably deletes the checkpoint with this hash (retention); false when there was none. */
  remove(path: string, sha256: string): Promise<boolean>;
  /** Every stored checkpoint, by hash (for the sweep of files no row refers to). */
  list(): Promise<{ sha256: string; path: string }[]>;
}

/**
 * A model's parameters and optimizer state kept where a SIMD kernel steps them in place (the WebAssembly
 * optimizer, adapters/workers/resident-optimizer.ts). Its step must give core/optimizer.ts's bits exactly (see
 * OuterStepRule): crash recovery replays journaled aggregates through the reference onto these same arrays.
 */
export interface ResidentModel {
  readonly params: Float32Array;
  /** The optimizer state, its slots resident too; the model store hands it out as the model's optimizer state. */
  readonly state: OptimizerState;
  /** One step with `aggregate` (any array of paramCount floats: copied in), as Strategy.applyAggregate. */
  apply(aggregate: Float32Array): void;
  /**
   * checksum32 (protocol/frame.ts) of the parameters, read where they lie. Once apply() has run, the parameters
   * change only through apply() (the step computes the checksum on its way); before, anyone may write them.
   */
  checksum(): number;
  /**
   * Whether the step can be staged: computed out of place (a second bank) while the live model stays as it is,
   * then published or dropped. The model store stages a round's step while its commit is made durable.
   */
  readonly canStage: boolean;
  /**
   * The step with `aggregate` into the second bank, possibly on another thread; params and state stay the live
   * model's. Resolves once staged; rejects (nothing staged) when it could not run or was dropped meanwhile.
   */
  stage(aggregate: Float32Array): Promise<void>;
  /** Where the step reads the aggregate from: an aggregate written here is not copied again. */
  readonly grad?: Float32Array;
  /** The staged parameters (to copy into the next model frame early) and their checksum32; null when none. */
  readonly stagedParams: Float32Array | null;
  readonly stagedChecksum: number | null;
  /** The staged step becomes the live model (params and state.slots change to the other bank's arrays). */
  commitStaged(): void;
  dropStaged(): void;
}

/** Where the model store keeps a model it steps with a kernel; absent or null from create(): the JS reference. */
export interface OptimizerKernels {
  /** Zeroed parameters and state for `paramCount` parameters stepped by `rule`; null when the kernel cannot run it. */
  create(rule: OuterStepRule, paramCount: number): ResidentModel | null;
}

/** A buffer one incoming update is decoded into; it lives in memory the aggregation workers can read. */
export interface UpdateSlot {
  readonly id: number;
  readonly view: Float32Array;
}

export interface Aggregator {
  /** Reserves memory for one update of paramCount floats. */
  acquire(paramCount: number): UpdateSlot;
  release(slot: UpdateSlot): void;
  /** One read pass over a slot: checksum, NaN/Inf count and squared norm (a SIMD kernel where available). */
  inspect(slot: UpdateSlot): PayloadStats;
  /** Sample-weighted mean of the slots' contents (weights need not sum to 1). Resolves to a new array. */
  weightedMean(slots: UpdateSlot[], weights: number[]): Promise<Float32Array>;
  /**
   * Aggregates the slots by a rule (see AggregationPlan), and measures every slot's distance from the result.
   * Resolves to new arrays; the slots are only read.
   */
  aggregate(slots: UpdateSlot[], plan: AggregationPlan): Promise<AggregateResult>;
  /**
   * A running sum for one round of a mean-type rule (see RunningSum). Optional: an aggregator without it gets
   * every update in a slot of its own, as the robust rules always do.
   */
  openSum?(paramCount: number): RunningSum;
  close(): Promise<void>;
}

/**
 * The ingest fast path for mean-type rules: each update is checked and added into the round's sum as it
 * arrives, in one pass over its received bytes. A fold is tentative until accepted or discarded, so an update
 * refused after its bytes were read (checksum, NaN/Inf, norm limit, stale round) never reaches the sum.
 * Codecs other than float32 decode into a buffer of their own and fold that buffer's bytes: the same path.
 */
export interface RunningSum {
  readonly paramCount: number;
  /** Updates accepted so far, and the sum of their weights. */
  readonly accepted: number;
  readonly totalWeight: number;
  /** True between a fold and its accept or discard. */
  readonly pending: boolean;
  /** Checks `bytes` (little-endian float32, any alignment) and adds weight * values into a tentative sum. */
  fold(bytes: Uint8Array, weight: number): PayloadStats;
  accept(): void;
  discard(): void;
  /**
   * The weighted mean of the accepted updates (sum / totalWeight), written into `into` (paramCount floats) when
   * given, else as a new array.
   */
  mean(into?: Float32Array): Float32Array;
  /**
   * Each accepted update's L2 distance from that mean, in accept order, estimated from a random-sign sketch
   * the fold kept of it (the update itself is not kept): a few percent off, enough for outlier scores.
   */
  distances(): number[];
  /**
   * Norm clipping once the round's norms are known: accepted update `index` (accept order; `bytes` as received)
   * counts `scale` (0..1) times itself in the sum and in its sketch; the mean's denominator is unchanged.
   */
  rescale(index: number, bytes: Uint8Array, scale: number): void;
  /** Returns the sum's memory; the sum is unusable afterwards. */
  close(): void;
}

/**
 * How to combine N updates. The robust rules are unweighted: they exist to bound any one node's influence.
 * - weighted-mean: sample-weighted mean (as weightedMean).
 * - trimmed-mean: per coordinate, drop the `trim` smallest and `trim` largest values (0 <= 2 * trim < N) and
 *   average the rest. Tolerates up to `trim` arbitrary updates.
 * - median: per coordinate (the mean of the middle two for even N). Tolerates floor((N - 1) / 2).
 * - multi-krum (Blanchard et al. 2017): score each update by the sum of its squared distances to its N - f - 2
 *   nearest others, keep the m lowest-scoring (ties: lower index), average them. Needs N > 2f + 2, 1 <= m <= N - f.
 */
export type AggregationPlan =
  | { rule: 'weighted-mean'; weights: number[] }
  | { rule: 'trimmed-mean'; trim: number }
  | { rule: 'median' }
  | { rule: 'multi-krum'; f: number; m: number };

export interface AggregateResult {
  aggregate: Float32Array;
  /**
   * ||u_i - aggregate|| (Euclidean) for every slot i, in the order given: a per-node outlier score. The SIMD
   * backend sums squares in float32 runs of 1,024 values added in float64 (relative error about 1e-6), so a
   * difference above 1.8e19 in one coordinate reads +Infinity (the update-norm limit refuses those first).
   */
  distances: Float64Array;
  /** multi-krum only: the indices (into the slots given) of the updates averaged, ascending. */
  kept?: number[];
  /** multi-krum only: every slot's Krum score (sum of squared distances to its N - f - 2 nearest). */
  scores?: Float64Array;
}

/** Test-set evaluation of a parameter vector (runs off the coordinator's event loop). */
export interface Evaluator {
  /**
   * transfer: the caller hands its array over (it is detached afterwards), so the evaluator need not copy it
   * again; without it, the caller's array stays intact.
   */
  evaluate(params: Float32Array, opts?: { transfer?: boolean }): Promise<{ loss: number; accuracy: number; samples: number }>;
  close(): Promise<void>;
}

/** One applied round in the write-ahead journal: the aggregated update and what it advanced the model to. */
export interface JournalEntry {
  sessionId: number;
  round: number;
  /** Model version after applying this entry. */
  modelVersion: number;
  samples: number;
  update: Float32Array;
}

/**
 * Write-ahead journal of applied updates. The coordinator appends (durably) before it records a round as
 * applied, so after a crash the latest checkpoint plus the journal entries the ledger says were applied
 * rebuild the exact model: nothing applied is lost, nothing is applied twice.
 */
export interface UpdateJournal {
  append(entry: JournalEntry): Promise<void>;
  /** Entries of a session with modelVersion > afterVersion, in order. */
  read(sessionId: number, afterVersion: number): Promise<JournalEntry[]>;
  /** Drops entries with modelVersion <= version (they are inside a durable checkpoint). */
  compact(sessionId: number, version: number): Promise<void>;
}

/**
 * Named blobs of bytes in one flat namespace: what checkpoint files and the update journal are stored as.
 * Keys are 1-200 characters of [A-Za-z0-9._-] not starting with '.' (the file adapter's own temporary names do).
 *
 * Durability: every operation that changes what a key holds resolves only once the change is durable (survives
 * a crash or power loss), except writes and truncates through a BlobUpdater, which are durable once its sync()
 * resolves. Replacement is atomic: a reader sees the old blob or the new one, never a mix, also after a crash.
 * An open BlobReader or BlobUpdater keeps the blob it opened, as a file descriptor does, even if the key is
 * replaced or deleted meanwhile.
 */
export interface BlobStore {
  /** Where a key's blob lives, for records and messages (a file path for the file store). No I/O. */
  locate(key: string): string;
  /** Stores bytes under key, atomically replacing what it held. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** A copy of the whole blob, or null when the key holds none. */
  get(key: string): Promise<Uint8Array | null>;
  /**
   * Starts a blob written in pieces, invisible under any key until commit(key): for blobs too big to hold twice
   * in memory, and for content-addressed ones whose key is known only once every byte is written.
   */
  createWriter(): Promise<BlobWriter>;
  /** Random-access reads of one blob, or null when the key holds none. */
  openReader(key: string): Promise<BlobReader | null>;
  /** Opens a blob for writing in place (an append-only log), creating an empty one when the key holds none. */
  openUpdater(key: string): Promise<BlobUpdater>;
  /** Durably removes the key's blob; false when there was none. */
  delete(key: string): Promise<boolean>;
  /** The keys that start with prefix, sorted. */
  list(prefix?: string): Promise<string[]>;
}

export interface BlobWriter {
  /** Appends bytes (copied or written before it resolves: the caller may reuse the array afterwards). */
  write(bytes: Uint8Array): Promise<void>;
  /** Bytes written so far. */
  readonly size: number;
  /** Makes the bytes durable, then the blob visible under key (replacing what it held); the writer is done. */
  commit(key: string): Promise<void>;
  /** Drops what was written; nothing becomes visible. Idempotent, and harmless after commit. */
  abort(): Promise<void>;
}

export interface BlobReader {
  /** The blob's current length in bytes. */
  size(): Promise<number>;
  /** Reads up to into.length bytes from position into `into`; resolves with the count, 0 at or past the end. */
  read(into: Uint8Array, position: number): Promise<number>;
  close(): Promise<void>;
}

export interface BlobUpdater extends BlobReader {
  /** Whether opening created the blob (it was not there). */
  readonly created: boolean;
  /** Writes all of bytes at position, growing the blob (with zeros before position if it lies past the end). */
  write(bytes: Uint8Array, position: number): Promise<void>;
  /** Cuts the blob to length bytes. */
  truncate(length: number): Promise<void>;
  /**
   * Makes every write and truncate so far durable (fdatasync), and the blob's key too when opening created it:
   * the write-ahead journal resolves an append only after this.
   */
  sync(): Promise<void>;
}

/** A worker thread's own memory as it last reported it (its V8 isolate is not in the main thread's figures). */
export interface WorkerMemory {
  /** The thread's name ('evaluator worker', 'aggregator worker 0'). */
  worker: string;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}
