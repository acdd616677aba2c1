// What the engine asks for. Effects are plain data; the runner carries them out in order, through ports,
// and feeds their results back as events. Nothing here happens by itself.
import type { CoordinatorMessage } from '../../../protocol/messages';
import type { LogLine } from '../events';
import type { ContributionRecord, MetricPoint, ModelName, RoundSummary, SessionEvent, SessionSnapshot } from '../types';
import type { CommittedEvent } from './committed';
import type { CheckpointPurpose, EvaluationPurpose, PersistPurpose, TimerName, UpdateHeader } from './events';
import type { RequestId } from './state';
import type { AggregationPlan } from './strategy';

export type Reply = { ok: true; session: SessionSnapshot | null } | { ok: false; code: 'CONFLICT' | 'BAD_REQUEST' | 'NOT_FOUND' | 'INTERNAL'; message: string };

export type Effect =
  // agents
  | { type: 'send'; nodeId: number; message: CoordinatorMessage }
  /** One encoding of the model at `modelVersion`, the same bytes to each node. */
  | { type: 'send-model'; nodeIds: number[]; sessionId: number; round: number; modelVersion: number }
  | { type: 'close'; nodeId: number; connection: number; code: number; reason: string }
  // timers
  | { type: 'set-timer'; timer: TimerName; delayMs: number; round: number | null }
  | { type: 'cancel-timer'; timer: TimerName }
  // the update path
  /** Copy the frame being handled into an aggregator slot and inspect it, now, before anything else runs. */
  | { type: 'ingest'; nodeId: number; frame: number; header: UpdateHeader }
  | { type: 'release-slots'; slots: number[] }
  | { type: 'aggregate'; sessionId: number; round: number; plan: AggregationPlan }
  /** Journal the aggregate (when there is one), then ONE transaction: round, contributions, metric, session, outbox. */
  | {
      type: 'commit-round';
      sessionId: number;
      round: number;
      journal: { modelVersion: number; samples: number } | null;
      summary: RoundSummary;
      contributions: ContributionRecord[];
      metric: MetricPoint;
      session: SessionSnapshot;
      events: CommittedEvent[];
    }
  /** The round is durable: apply its aggregate to the model in memory. */
  | { type: 'apply-update'; sessionId: number; round: number }
  | { type: 'discard-update'; sessionId: number; round: number }
  // sessions
  | { type: 'create-session'; session: SessionSnapshot; events: CommittedEvent[] }
  | { type: 'persist-session'; session: SessionSnapshot; events: CommittedEvent[]; purpose: PersistPurpose; requestId: RequestId | null }
  | { type: 'record-rejection'; record: ContributionRecord; events: CommittedEvent[] }
  | { type: 'start-evaluator'; sessionId: number; model: ModelName; dataset: string }
  | { type: 'stop-evaluator' }
  | { type: 'evaluate'; sessionId: number; round: number; purpose: EvaluationPurpose }
  | { type: 'record-evaluation'; sessionId: number; round: number; loss: number; accuracy: number }
  | { type: 'checkpoint'; sessionId: number; round: number; purpose: CheckpointPurpose }
  // the live view and the operator
  | { type: 'timeline'; event: SessionEvent }
  | { type: 'publish-node'; nodeId: number }
  | { type: 'publish-status' }
  | { type: 'log'; level: LogLine['level']; message: string }
  | { type: 'reply'; requestId: RequestId; reply: Reply };
