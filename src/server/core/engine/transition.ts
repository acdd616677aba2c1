// The scratchpad of one step: the state being built and the effects asked for so far. It lives only inside
// step(); what leaves step is the final state and the list of effects, so step stays a pure function.
import type { LogLine } from '../events';
import type { SessionEvent, SessionEventKind } from '../types';
import { evolveAll, type CommittedEvent } from './committed';
import type { Effect } from './effects';
import type { LiveRound, LiveSession, EngineState } from './state';

export class Transition {
  readonly effects: Effect[] = [];

  constructor(
    public state: EngineState,
    readonly at: number,
  ) {}

  emit(effect: Effect): void {
    this.effects.push(effect);
  }

  set(change: Partial<EngineState>): void {
    this.state = { ...this.state, ...change };
  }

  setSession(change: Partial<LiveSession>): void {
    if (this.state.session) this.state = { ...this.state, session: { ...this.state.session, ...change } };
  }

  setRound(change: Partial<LiveRound> | null): void {
    this.state = { ...this.state, round: change === null ? null : { ...this.state.round!, ...change } };
  }

  /** Folds committed events into the durable state (the only way it changes). */
  commit(events: readonly CommittedEvent[]): void {
    if (events.length > 0) this.state = { ...this.state, durable: evolveAll(this.state.durable, events) };
  }

  log(level: LogLine['level'], message: string): void {
    this.emit({ type: 'log', level, message });
  }

  /** Adds to the current session's durable timeline (and tells live viewers). */
  timeline(kind: SessionEventKind, message: string, nodeId: number | null = null, detail: SessionEvent['detail'] = null): void {
    const session = this.state.session;
    if (!session) return;
    const round = this.state.durable.sessions.get(session.id)?.round ?? 0;
    this.emit({ type: 'timeline', event: { sessionId: session.id, at: this.at, round, kind, message, nodeId, detail } });
  }

  publishNode(nodeId: number): void {
    this.emit({ type: 'publish-node', nodeId });
  }

  publishStatus(): void {
    this.emit({ type: 'publish-status' });
  }
}
