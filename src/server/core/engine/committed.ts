// Committed events: what a durable write said happened. Every commit transaction (a round, a session state
// change, a recorded rejection) writes the events it produced to the outbox table in the same transaction,
// and the engine advances its durable state only through `evolve` over these same events. So folding the
// outbox from an empty state rebuilds the engine's durable state exactly: what a standby coordinator or a
// downstream consumer relies on.
import type { DataCursorRecord, MetricPoint, SessionConfig, SessionState } from '../types';

export type CommittedEvent =
  | { kind: 'session-started'; sessionId: number; at: number; config: SessionConfig; trainSize: number; paramCount: number }
  | {
      kind: 'round-committed';
      sessionId: number;
      round: number;
      applied: boolean;
      /** Model version after the round (bumped only when applied). */
      modelVersion: number;
      samples: number;
      totalSamples: number;
      epoch: number;
      cursor: DataCursorRecord;
      metric: MetricPoint;
    }
  | { kind: 'node-credited'; sessionId: number; round: number; nodeId: number; status: 'applied' | 'rejected'; samples: number; count?: number }
  | { kind: 'epoch-closed'; sessionId: number; epoch: number; round: number }
  /**
   * Every audit of the epoch is resolved (services/audits.ts, after its epoch-closed): the nodes caught sending
   * updates that do not match forfeit the epoch's credit. Settlement pays an epoch only after this event.
   */
  | { kind: 'epoch-audited'; sessionId: number; epoch: number; forfeitedNodeIds: number[] }
  | { kind: 'session-state-changed'; sessionId: number; at: number; state: SessionState; message: string | null; endedAt: number | null };

export type CommittedEventKind = CommittedEvent['kind'];

/** An outbox row: a committed event with its position. Positions only grow. */
export interface OutboxRecord {
  id: number;
  event: CommittedEvent;
}

export interface NodeCredit {
  acceptedContributions: number;
  rejectedContributions: number;
  acceptedSamples: number;
  /**
   * Epochs whose credit this node forfeited (a failed audit), ascending. Its contributions stay counted above
   * (they are in the model); what they earn is decided per epoch by whoever pays (settlement). Optional so a
   * credit built without audits (recovery from contributions, older folds) needs no change.
   */
  forfeitedEpochs?: readonly number[];
}

export const NO_CREDIT: NodeCredit = Object.freeze({ acceptedContributions: 0, rejectedContributions: 0, acceptedSamples: 0 });

export interface DurableSession {
  id: number;
  config: SessionConfig;
  trainSize: number;
  paramCount: number;
  startedAt: number;
  state: SessionState;
  message: string | null;
  endedAt: number | null;
  round: number;
  modelVersion: number;
  epoch: number;
  totalSamples: number;
  cursor: DataCursorRecord;
  /** Highest epoch whose every sample reached the model (-1: none yet). */
  closedEpoch: number;
  /** Highest epoch whose audits are all resolved (absent or -1: none yet). */
  auditedEpoch?: number;
}

/** What the commits say, and nothing else: sessions by id and each session's per-node credit. */
export interface DurableState {
  sessions: ReadonlyMap<number, DurableSession>;
  credits: ReadonlyMap<number, ReadonlyMap<number, NodeCredit>>;
}

export const EMPTY_DURABLE: DurableState = { sessions: new Map(), credits: new Map() };

export function evolve(state: DurableState, event: CommittedEvent): DurableState {
  switch (event.kind) {
    case 'session-started': {
      const session: DurableSession = {
        id: event.sessionId,
        config: event.config,
        trainSize: event.trainSize,
        paramCount: event.paramCount,
        startedAt: event.at,
        state: 'running',
        message: null,
        endedAt: null,
        round: 0,
        modelVersion: 0,
        epoch: 0,
        totalSamples: 0,
        cursor: { epoch: 0, position: 0, pending: [] },
        closedEpoch: -1,
      };
      return { sessions: withEntry(state.sessions, event.sessionId, session), credits: withEntry(state.credits, event.sessionId, new Map()) };
    }
    case 'round-committed':
      return updateSession(state, event.sessionId, (s) => ({
        ...s,
        round: event.round,
        modelVersion: event.modelVersion,
        epoch: event.epoch,
        totalSamples: event.totalSamples,
        cursor: event.cursor,
      }));
    case 'epoch-closed':
      return updateSession(state, event.sessionId, (s) => ({ ...s, closedEpoch: Math.max(s.closedEpoch, event.epoch) }));
    case 'session-state-changed':
      return updateSession(state, event.sessionId, (s) => ({ ...s, state: event.state, message: event.message, endedAt: event.endedAt }));
    case 'epoch-audited': {
      const audited = updateSession(state, event.sessionId, (s) => ({ ...s, auditedEpoch: Math.max(s.auditedEpoch ?? -1, event.epoch) }));
      if (event.forfeitedNodeIds.length === 0) return audited;
      const credits = new Map(audited.credits.get(event.sessionId) ?? new Map<number, NodeCredit>());
      for (const nodeId of event.forfeitedNodeIds) {
        const credit = credits.get(nodeId) ?? NO_CREDIT;
        const epochs = new Set(credit.forfeitedEpochs ?? []);
        epochs.add(event.epoch);
        credits.set(nodeId, { ...credit, forfeitedEpochs: [...epochs].sort((a, b) => a - b) });
      }
      return { ...audited, credits: withEntry(audited.credits, event.sessionId, credits) };
    }
    case 'node-credited': {
      const credits = state.credits.get(event.sessionId) ?? new Map<number, NodeCredit>();
      const credit = credits.get(event.nodeId) ?? NO_CREDIT;
      const next: NodeCredit =
        event.status === 'applied'
          ? { ...credit, acceptedContributions: credit.acceptedContributions + 1, acceptedSamples: credit.acceptedSamples + event.samples }
          : { ...credit, rejectedContributions: credit.rejectedContributions + (event.count ?? 1) };
      return { ...state, credits: withEntry(state.credits, event.sessionId, withEntry(credits, event.nodeId, next)) };
    }
  }
}

export function evolveAll(state: DurableState, events: readonly CommittedEvent[]): DurableState {
  return events.reduce(evolve, state);
}

function updateSession(state: DurableState, id: number, change: (s: DurableSession) => DurableSession): DurableState {
  const session = state.sessions.get(id);
  if (!session) return state; // an event for a session this state never saw start (pruned outbox): nothing to fold into
  return { ...state, sessions: withEntry(state.sessions, id, change(session)) };
}

function withEntry<K, V>(map: ReadonlyMap<K, V>, key: K, value: V): ReadonlyMap<K, V> {
  const next = new Map(map);
  next.set(key, value);
  return next;
}
