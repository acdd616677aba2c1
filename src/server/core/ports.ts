// Ports: what the coordinator needs from the outside world. Services receive these; adapters implement them.
// Every port has a fake in tests/support and the real adapter passes the same conformance tests.

import type { PayloadStats } from '../../protocol/frame';
import type { CommittedEvent, OutboxRecord } from './engine/committed';
import type { CoordinatorEvent } from './events';
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
}

/** Datasets the coordinator can hand out shards of. */
export interface DatasetCatalog {
  describe(id: string): Promise<{ trainSize: number; testSize: number }>;
}

/** In-process publish/subscribe of live events (dashboard subscriptions, /ws clients, loggers). */
export interface EventPublisher {
  publish(event: CoordinatorEvent): void;
  subscribe(listener: (event: CoordinatorEvent) => void): () => void;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): () => void;
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
  setNodeTokenHash(id: number, tokenHash: string): Promise<void>;

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
  listContributions(sessionId: number): Promise<ContributionRecord[]>;
  listRounds(sessionId: number): Promise<RoundSummary[]>;
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

  close(): Promise<void>;
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
  close(): Promise<void>;
}

/** Test-set evaluation of a parameter vector (runs off the coordinator's event loop). */
export interface Evaluator {
  evaluate(params: Float32Array): Promise<{ loss: number; accuracy: number; samples: number }>;
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
