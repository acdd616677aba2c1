// All session and round state of the coordinator, in one immutable value. The engine's step function is the
// only thing that makes a new one; the runner holds the current one and the big arrays (the model, optimizer
// state, aggregator slots) that the state only refers to.
import type { DeadlinePolicy, Arrivals } from '../deadline';
import type { OpenRound, RoundOutcome } from '../round';
import type { DataCursor } from '../shards';
import type { ContributionRecord, MetricPoint, SessionConfig, SessionState } from '../types';
import { EMPTY_DURABLE, type DurableState } from './committed';
import type { Reservations } from './lookahead';
import { EMPTY_POOL, type NodePool } from './node-pool';

export interface EngineOptions {
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  /** Round deadline policy; the ceiling comes from each session's roundTimeoutMs. */
  deadline: Omit<DeadlinePolicy, 'ceilingMs'>;
  /**
   * An update whose norm exceeds this many times the median of recently accepted ones counts as if it were that
   * long (clipped); one past the larger of NORM_REFUSE_OVER_CLIP times that and NORM_REFUSE_OVER_P90 times their
   * 90th percentile is refused, whatever the session's absolute limit (0: off; normScreen in rounds.ts). One update
   * scaled up to outweigh every honest one combined does not get its way.
   */
  normRatio: number;
}

/** A request from the API waiting for its answer (start, pause, resume, stop, shutdown). */
export type RequestId = number;

/** The session in memory: the durable part lives in `durable.sessions`, this is what only a live engine knows. */
export interface LiveSession {
  id: number;
  /** The data cursor after the last committed round plus the shards handed out since. */
  cursor: DataCursor;
  /** Overlap: each node's shard for the next round, reserved when this one opened (lookahead.ts); not in `cursor`. */
  reserved?: Reservations;
  arrivals: Arrivals;
  /**
   * Norms of recently accepted updates, as they arrived (clipped ones included; a waived one at most at the limit it
   * would have been refused over): the relative norm screen's reference (normScreen in rounds.ts).
   */
  norms: readonly number[];
  /**
   * Shards (`epoch:start:count`) whose update was refused against the relative norm limit: the next update for
   * the same shard is refused only over the session's absolute limit, and still clipped (see onUpdateIngested).
   * Optional: absent = none.
   */
  normRefusedShards?: ReadonlySet<string>;
  /**
   * Updates clipped to the relative norm limit since `since`, in all and per node, for the log's summary, and the
   * limit's reason at the last (absent: none this session yet).
   */
  clipLog?: { count: number; since: number; byNode: ReadonlyMap<number, number>; why: string };
  /** The last few committed rounds' metrics (throughput over a window, and the latest for evaluation). */
  recent: readonly MetricPoint[];
  lastTestAccuracy: number | null;
  lastTestLoss: number | null;
  samplesPerSecond: number;
  lastRoundDurationMs: number | null;
  /** An evaluation crossed the target while rounds went on: confirm on the model as it is once they stop. */
  completionPending: boolean;
  /** Set while the session is being ended: each stage waits for the one before it. */
  ending: SessionEnding | null;
  /** Rejected updates not yet written, one tally per (round, node, reason): written at round close or every second. */
  rejections: ReadonlyMap<string, RejectionTally>;
  /** When the oldest unwritten rejection arrived. */
  rejectionsSince: number | null;
}

export interface RejectionTally {
  record: ContributionRecord;
  count: number;
}

export interface SessionEnding {
  state: Extract<SessionState, 'stopped' | 'completed'>;
  message: string;
  at: number;
  stage: 'waiting-for-round' | 'evaluating' | 'checkpointing' | 'persisting';
  requestId: RequestId | null;
}

export type RoundStage =
  /** Collecting updates. */
  | 'collecting'
  /** The set of updates is fixed; the aggregator is computing. */
  | 'aggregating'
  /** Journal append and the round's transaction are in flight. */
  | 'committing';

export interface LiveRound {
  open: OpenRound<number>;
  stage: RoundStage;
  stragglerArmed: boolean;
  /** Why it closed, and what closing decided (set once it stops collecting). */
  closedBecause: string | null;
  outcome: RoundOutcome<number> | null;
  /** Outlier score per node of the round's aggregation, once aggregated (robust-scoring.ts). */
  outlierScores?: ReadonlyMap<number, number>;
  /** The factor each node's update is scaled down by in the aggregation plan (norm clipping); only those under 1. */
  scales?: ReadonlyMap<number, number>;
}

export interface PendingStart {
  requestId: RequestId;
  sessionId: number;
  config: SessionConfig;
  trainSize: number;
  paramCount: number;
  at: number;
}

export interface EngineState {
  options: EngineOptions;
  startedAt: number;
  shuttingDown: { requestId: RequestId; stage: 'waiting-for-round' | 'checkpointing' | 'persisting' | 'done' } | null;
  /** Round nonces: attempt numbers are derived from this seed (new at every start) and the count of opens. */
  nonceSeed: number;
  opens: number;
  /** When the heartbeat sweep is due (a sweep that runs much later shows the coordinator was stalled). */
  sweepDueAt: number | null;
  /** The highest session id allocated so far (the engine allocates them, so a replay gets the same ones). */
  lastSessionId: number;
  durable: DurableState;
  pool: NodePool;
  session: LiveSession | null;
  round: LiveRound | null;
  starting: PendingStart | null;
}

export function initialState(options: EngineOptions, startedAt: number, lastSessionId = 0): EngineState {
  return {
    options,
    startedAt,
    shuttingDown: null,
    nonceSeed: 0,
    opens: 0,
    sweepDueAt: null,
    lastSessionId,
    durable: EMPTY_DURABLE,
    pool: EMPTY_POOL,
    session: null,
    round: null,
    starting: null,
  };
}
