// What the engine hears: from agents (through the gateway), from the API, from timers, and the results of
// the effects it asked for. Every event carries the time it happened (`at`, epoch ms from the clock port).
import type { FrameHeader, PayloadStats } from '../../../protocol/frame';
import type { NodeCapabilities, SessionConfig } from '../types';
import type { CommittedEvent, DurableSession, NodeCredit } from './committed';
import type { RequestId } from './state';
import type { MetricPoint } from '../types';

export type TimerName = 'sweep' | 'straggler' | 'deadline';
export type EvaluationPurpose = 'periodic' | 'confirm' | 'final';
export type CheckpointPurpose = 'final' | 'shutdown';
export type PersistPurpose = 'control' | 'ending' | 'shutdown' | 'recovered';

/** The part of an update frame's header the engine decides on. */
export type UpdateHeader = Pick<FrameHeader, 'kind' | 'sessionId' | 'round' | 'nodeId' | 'attempt' | 'modelVersion' | 'sampleCount' | 'paramCount' | 'checksum' | 'trainLoss'>;

export type EngineEvent =
  // agents
  | { type: 'node-registered'; at: number; nodeId: number; name: string; capabilities: NodeCapabilities; connection: number; issuedToken: string | null }
  | { type: 'node-ready'; at: number; nodeId: number; connection: number; sessionId: number }
  | { type: 'heartbeat'; at: number; nodeId: number; connection: number; computeShare?: number }
  /** The gateway measured the node's link: a ping's round trip, or the transfer of an update frame. */
  | { type: 'link-measured'; at: number; nodeId: number; connection: number; rttMs?: number; uploadBytesPerSecond?: number }
  | { type: 'node-lost'; at: number; nodeId: number; connection: number; reason: string; left: boolean }
  /** `frame` is the runner's reference to the bytes (the engine never sees them); ingest hands it back. */
  | { type: 'update-arrived'; at: number; nodeId: number; connection: number; frame: number; header: UpdateHeader | null; error: { code: string; message: string } | null }
  | { type: 'update-ingested'; at: number; nodeId: number; header: UpdateHeader; slot: number; stats: PayloadStats }
  | { type: 'update-ingest-failed'; at: number; nodeId: number; header: UpdateHeader; code: string; message: string }
  // the API
  | { type: 'start'; at: number; requestId: RequestId; config: SessionConfig; trainSize: number; paramCount: number }
  | { type: 'pause' | 'resume' | 'stop' | 'shutdown'; at: number; requestId: RequestId }
  /** The operator removes a node: disconnected, no further work (so no credit) in this session; banned for banMs when set. */
  | { type: 'kick'; at: number; requestId: RequestId; nodeId: number; banMs: number | null; reason: string }
  | {
      type: 'recovered';
      at: number;
      requestId: RequestId;
      session: DurableSession;
      credits: ReadonlyMap<number, NodeCredit>;
      recent: MetricPoint[];
      lastTestAccuracy: number | null;
      lastTestLoss: number | null;
      how: string;
      detail: Record<string, number>;
    }
  // the runner started: arm the heartbeat sweep
  | { type: 'booted'; at: number; seed: number }
  // timers
  | { type: 'timer-fired'; at: number; timer: TimerName; round: number | null }
  // results of effects
  | { type: 'session-created'; at: number; sessionId: number }
  | { type: 'session-create-failed'; at: number; sessionId: number; message: string }
  | { type: 'session-persisted'; at: number; sessionId: number; purpose: PersistPurpose; requestId: RequestId | null }
  | { type: 'session-persist-failed'; at: number; sessionId: number; purpose: PersistPurpose; requestId: RequestId | null; message: string }
  /** `distances`: each update's L2 distance from the aggregate, in the plan's slot order (when measured). */
  | { type: 'aggregation-done'; at: number; sessionId: number; round: number; distances?: number[] }
  | { type: 'aggregation-failed'; at: number; sessionId: number; round: number; message: string }
  | { type: 'round-committed'; at: number; sessionId: number; round: number; events: CommittedEvent[] }
  /** The audit service committed an epoch-audited event (with why each forfeiting node forfeited). */
  | { type: 'epoch-audited'; at: number; event: Extract<CommittedEvent, { kind: 'epoch-audited' }>; reasons: Record<number, string> }
  | { type: 'commit-failed'; at: number; sessionId: number; round: number; message: string }
  | { type: 'evaluation-done'; at: number; sessionId: number; round: number; modelVersion: number; loss: number; accuracy: number; purpose: EvaluationPurpose }
  | { type: 'evaluation-failed'; at: number; sessionId: number; round: number; purpose: EvaluationPurpose; message: string }
  | { type: 'checkpoint-written'; at: number; sessionId: number; round: number; purpose: CheckpointPurpose }
  | { type: 'checkpoint-failed'; at: number; sessionId: number; purpose: CheckpointPurpose; message: string };
