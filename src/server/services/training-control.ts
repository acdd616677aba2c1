// What the API layer (tRPC procedures and the REST facade) may ask of the coordinator. Procedures stay thin:
// validate input, call one of these, return the DTO.
import type { LedgerReport } from '../core/ledger';
import type { DashboardSnapshot, StatusSnapshot } from '../core/events';
import type { DatasetListing, EventPublisher, ExportedModel, RoundRange } from '../core/ports';
import type { SessionConfigInput } from '../core/session-config';
import type {
  CheckpointRecord,
  ContributionRecord,
  MetricPoint,
  NodeSnapshot,
  RoundSummary,
  SessionEvent,
  SessionSnapshot,
} from '../core/types';

export type { SessionConfigInput };

export interface TrainingControl {
  status(): StatusSnapshot;
  dashboard(): DashboardSnapshot;
  nodes(): NodeSnapshot[];
  node(id: number): NodeSnapshot | null;
  metrics(sessionId?: number, limit?: number): Promise<{ latest: MetricPoint | null; history: MetricPoint[] }>;
  sessions(limit: number): Promise<SessionSnapshot[]>;
  session(id: number): Promise<SessionSnapshot | null>;
  /** A page of rounds (all of them without a range: use it only where the whole ledger is needed). */
  rounds(sessionId: number, range?: RoundRange): Promise<RoundSummary[]>;
  contributions(sessionId: number, range?: RoundRange): Promise<ContributionRecord[]>;
  checkpoints(sessionId: number): Promise<CheckpointRecord[]>;
  /** The session's durable timeline (joins, failures, restarts...), oldest first. */
  sessionEvents(sessionId: number): Promise<SessionEvent[]>;
  /** The model held now: session, version and checksum32 of its parameters (for crash proofs). */
  modelIdentity(): { sessionId: number | null; modelVersion: number; paramCount: number; checksum: number | null };
  /** Exactly-once audit of the session's ledger. */
  ledger(sessionId: number): Promise<LedgerReport>;
  /** The datasets this coordinator registered (by id, never by path) with their sizes. */
  datasets(): Promise<DatasetListing[]>;
  /** Starts a session; with `initFrom`, from that checkpoint's weights and (as defaults) its session's settings. */
  start(config: SessionConfigInput): Promise<SessionSnapshot>;
  /** A session's model (the checkpoint at `round`, or the latest for null) as TensorFlow.js layers files. */
  modelFiles(sessionId: number, round: number | null, weightsPath: string): Promise<ExportedModel>;
  pause(): Promise<SessionSnapshot>;
  /** Disconnects a node; no further work or credit for it in this session; banSeconds also refuses its name that long. */
  kick(nodeId: number, options: { banSeconds: number | null; reason: string }): Promise<void>;
  resume(): Promise<SessionSnapshot>;
  stop(): Promise<SessionSnapshot>;
  readonly events: EventPublisher;
}
