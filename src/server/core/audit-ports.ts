// The audit ledger's port: audit rows, per-epoch forfeits and the epoch-audited commit (with its outbox event in
// the same transaction), and the per-node reads the "why did I earn this" timeline is built from. Kept apart
// from TrainingRepository so the audit feature is one adapter module and one fake, not a change to every one.
import type { AuditOutcome } from './audit';
import type { CommittedEvent, OutboxRecord } from './engine/committed';
import type { ContributionRecord, SessionEvent } from './types';

export type AuditState = 'pending' | AuditOutcome;

export interface AuditRecord {
  sessionId: number;
  epoch: number;
  round: number;
  nodeId: number;
  attempt: number;
  /** The model version the node trained from (the one the auditor recomputes on). */
  modelVersion: number;
  shardStart: number;
  shardCount: number;
  outcome: AuditState;
  selectedBy: 'reservoir' | 'sampled' | 'reservoir+sampled' | 'unrecoverable';
  relativeError: number | null;
  cosine: number | null;
  tolerance: number;
  detail: string | null;
  selectedAt: number;
  resolvedAt: number | null;
}

export interface AuditResolution {
  outcome: AuditOutcome;
  relativeError: number | null;
  cosine: number | null;
  detail: string | null;
  resolvedAt: number;
}

export interface ForfeitRecord {
  sessionId: number;
  epoch: number;
  nodeId: number;
  reason: string;
  at: number;
}

/** What one node did in the ledger: the rows its timeline is folded from (services/node-timeline.ts). */
export interface NodeLedger {
  node: { id: number; name: string; firstSeenAt: number; lastSeenAt: number } | null;
  contributions: ContributionRecord[];
  audits: AuditRecord[];
  forfeits: ForfeitRecord[];
  /** Timeline events about the node (joined, failed, benched, audit failed...), oldest first. */
  events: SessionEvent[];
}

export interface AuditStore {
  /** Records a chosen audit as pending; choosing the same update again is a no-op. */
  recordAuditSelected(audit: AuditRecord): Promise<void>;
  resolveAudit(sessionId: number, round: number, nodeId: number, resolution: AuditResolution): Promise<void>;
  /** A session's audits of one epoch, by round then node. */
  listAudits(sessionId: number, epoch: number): Promise<AuditRecord[]>;
  /** True once the epoch-audited event of this epoch was committed. */
  isEpochAudited(sessionId: number, epoch: number): Promise<boolean>;
  /** The applied contributions of an epoch (who must have been audited), by round then node. */
  epochContributions(sessionId: number, epoch: number): Promise<ContributionRecord[]>;
  /** Model version each round trained from (the round row's version minus one when applied). */
  roundModelVersions(sessionId: number, rounds: number[]): Promise<Map<number, number>>;
  /** ONE transaction: the epoch's audit marker, its forfeits and the epoch-audited outbox event. */
  commitEpochAudit(input: { sessionId: number; epoch: number; audits: number; forfeits: ForfeitRecord[]; at: number; event: CommittedEvent }): Promise<OutboxRecord[]>;
  /** Every forfeit of a session (recovery puts them back into the nodes' credit). */
  listForfeits(sessionId: number): Promise<ForfeitRecord[]>;
  /** A node by numeric id or by name, with its ledger rows (newest `limitRounds` rounds of each session). */
  nodeLedger(idOrName: number | string, limitRounds: number): Promise<NodeLedger | null>;
}

/** Recomputes an accepted update (the auditor worker in production). */
export interface Auditor {
  recompute(input: { params: Float32Array; seed: number; epoch: number; shardStart: number; shardCount: number }): Promise<Float32Array>;
  close(): Promise<void>;
}

/**
 * Scratch files for audit captures that do not fit the in-memory bound (services/audit-vault.ts). Not durable and
 * not meant to be: a capture is worthless to a process that did not make it (a restart records its audit as not
 * done), so the adapter deletes whatever a previous process left before its first write, and no call fsyncs.
 * Names are the vault's own ([a-z0-9.-]); `read` returns exactly `length` float32 values or throws.
 */
export interface AuditSpill {
  write(name: string, data: Float32Array): Promise<void>;
  /** The same, before returning: for a burst, where copying the data to write it later would cost more memory. */
  writeSync(name: string, data: Float32Array): void;
  read(name: string, length: number): Promise<Float32Array>;
  remove(name: string): Promise<void>;
}
