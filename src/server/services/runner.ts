// The runner: feeds events to the engine one at a time and carries out the effects it returns, in order,
// through the ports. It holds what the engine only refers to: agent links, timers, aggregator slots, the
// model. An event's effects are all carried out before the next event is stepped; an effect that answers
// at once (ingest) is stepped right after, before anything queued, so an update goes from its arrival to
// its aggregator slot without yielding.
import type { FrameHeader } from '../../protocol/frame';
import { decodeFrameInto } from '../../protocol/frame';
import { HyperGpuError, RequestError } from '../../protocol/errors';
import type { AgentLink } from '../core/agent-protocol';
import type { OutboxRecord } from '../core/engine/committed';
import type { Effect } from '../core/engine/effects';
import type { EngineEvent, TimerName } from '../core/engine/events';
import type { EngineState, LiveRound, RequestId } from '../core/engine/state';
import { step } from '../core/engine/step';
import { nodeSnapshot, sessionSnapshot, statusOf } from '../core/engine/views';
import type { LogLine } from '../core/events';
import type { Aggregator, Clock, TrainingRepository, UpdateJournal, UpdateSlot } from '../core/ports';
import type { SessionSnapshot } from '../core/types';
import { ArrivalFolds } from './arrival-fold';
import type { Checkpointer } from './checkpointer';
import type { Evaluations } from './evaluations';
import type { LiveView } from './live-view';
import type { ModelStore } from './model-store';

export interface RunnerDeps {
  repo: TrainingRepository;
  journal: UpdateJournal;
  aggregator: Aggregator;
  clock: Clock;
  model: ModelStore;
  live: LiveView;
  evaluations: Evaluations;
  checkpointer: Checkpointer;
  /** Copies the updates chosen for an audit before the aggregate reuses their slots (services/audits.ts). */
  audits?: { capture(round: LiveRound, slotOf: (id: number) => UpdateSlot | undefined): void };
  /** Committed events go to the outbox's consumers once the engine has taken them in. */
  deliver(records: OutboxRecord[]): void;
  log?: (line: LogLine) => void;
}

/**
 * Waits before each retry of a round's journal append or its transaction. A busy database (SQLITE_BUSY past the
 * 5 s busy timeout: another process holds the write lock) or a passing I/O error often clears within a second;
 * after the last retry the commit fails and the engine pauses the session with the reason.
 */
export const COMMIT_RETRY_DELAYS_MS = [50, 250, 1000];

/**
 * Coded errors are decisions (a round already recorded, a record that breaks a rule): retrying cannot change
 * them. Anything else (SQLite busy or I/O errors, a failed fsync) may pass.
 */
function isTransient(error: unknown): boolean {
  return !(error instanceof HyperGpuError);
}

type Pending = { resolve: (session: SessionSnapshot | null) => void; reject: (error: Error) => void };

export class Runner {
  private queue: EngineEvent[] = [];
  private immediate: EngineEvent[] = [];
  private draining = false;
  /** Open agent connections by connection id, and the connection each registered node speaks on. */
  private readonly connections = new Map<number, AgentLink>();
  private readonly nodeConnections = new Map<number, number>();
  private readonly timers = new Map<TimerName, () => void>();
  private readonly slots = new Map<number, UpdateSlot>();
  private readonly requests = new Map<RequestId, Pending>();
  private nextRequest = 1;
  /** Frames whose update-arrived event has not been stepped yet, by reference (ingest copies them). */
  private readonly frames = new Map<number, { bytes: Uint8Array; header: FrameHeader }>();
  private nextFrame = 1;
  /** Background writes whose failure must be logged, and which shutdown waits for. */
  private readonly background = new Set<Promise<unknown>>();
  private waiters: { predicate: (s: SessionSnapshot) => boolean; resolve: (s: SessionSnapshot) => void }[] = [];
  /** Mean-type rules: updates folded into the round's running sum on arrival instead of kept in slots. */
  private readonly folds: ArrivalFolds;

  constructor(
    public state: EngineState,
    private readonly deps: RunnerDeps,
  ) {
    this.folds = new ArrivalFolds(deps.aggregator);
  }

  dispatch(event: EngineEvent): void {
    this.queue.push(event);
    if (!this.draining) this.drain();
  }

  /** Sends an API request to the engine and resolves with its reply. */
  request(make: (requestId: RequestId, at: number) => EngineEvent): Promise<SessionSnapshot | null> {
    const requestId = this.nextRequest++;
    const answer = new Promise<SessionSnapshot | null>((resolve, reject) => this.requests.set(requestId, { resolve, reject }));
    this.dispatch(make(requestId, this.deps.clock.now()));
    return answer;
  }

  /** A binary frame from a registered connection, its header already decoded (or not decodable) at the edge. */
  frameArrived(nodeId: number, connection: number, bytes: Uint8Array, header: FrameHeader | null, error: { code: string; message: string } | null): void {
    const frame = this.nextFrame++;
    if (header) this.frames.set(frame, { bytes, header });
    this.dispatch({ type: 'update-arrived', at: this.deps.clock.now(), nodeId, connection, frame, header, error });
  }

  connectionOpened(connection: number, link: AgentLink): void {
    this.connections.set(connection, link);
  }

  /** A connection registered as a node: messages to that node go to it from now on. */
  attach(nodeId: number, connection: number): void {
    if (this.connections.has(connection)) this.nodeConnections.set(nodeId, connection);
  }

  connectionClosed(connection: number, nodeId: number | null): void {
    this.connections.delete(connection);
    if (nodeId !== null && this.nodeConnections.get(nodeId) === connection) this.nodeConnections.delete(nodeId);
  }

  private linkOf(nodeId: number): AgentLink | undefined {
    const connection = this.nodeConnections.get(nodeId);
    return connection === undefined ? undefined : this.connections.get(connection);
  }

  waitForSession(predicate: (s: SessionSnapshot) => boolean): Promise<SessionSnapshot> {
    const current = sessionSnapshot(this.state);
    if (current && predicate(current)) return Promise.resolve(current);
    return new Promise((resolve) => this.waiters.push({ predicate, resolve }));
  }

  /** Waits for every write and evaluation in flight. */
  async settle(): Promise<void> {
    while (this.background.size > 0) await Promise.all([...this.background]);
    await this.deps.evaluations.idle();
    await this.deps.checkpointer.idle();
  }

  closeAllLinks(code: number, reason: string): void {
    for (const link of this.connections.values()) link.close(code, reason);
    for (const cancel of this.timers.values()) cancel();
    this.timers.clear();
  }

  private drain(): void {
    this.draining = true;
    try {
      for (;;) {
        const event = this.immediate.shift() ?? this.queue.shift();
        if (!event) break;
        const { state, effects } = step(this.state, event);
        this.state = state;
        for (const effect of effects) {
          try {
            this.execute(effect);
          } catch (error) {
            this.log('error', `effect ${effect.type} failed: ${errorText(error)}`);
          }
        }
        // A frame is never kept past its event, admitted or refused.
        if (event.type === 'update-arrived') this.frames.delete(event.frame);
        // A folded update the engine did not refuse in this step is in the round's sum from now on.
        if (event.type === 'update-ingested' && ArrivalFolds.isToken(event.slot)) this.folds.settle(event.slot);
      }
    } finally {
      this.draining = false;
    }
  }

  private now(): number {
    return this.deps.clock.now();
  }

  private execute(effect: Effect): void {
    const d = this.deps;
    switch (effect.type) {
      case 'send':
        this.linkOf(effect.nodeId)?.sendJson(effect.message);
        return;
      case 'send-model': {
        const bytes = d.model.modelFrame(effect.sessionId, effect.round, effect.modelVersion);
        for (const nodeId of effect.nodeIds) this.linkOf(nodeId)?.sendBinary(bytes);
        return;
      }
      case 'close': {
        const link = this.connections.get(effect.connection);
        this.connectionClosed(effect.connection, effect.nodeId);
        link?.close(effect.code, effect.reason);
        return;
      }
      case 'set-timer': {
        this.timers.get(effect.timer)?.();
        const { timer, round } = effect;
        const cancel = d.clock.setTimeout(() => {
          if (this.timers.get(timer) === cancel) this.timers.delete(timer);
          this.dispatch({ type: 'timer-fired', at: this.now(), timer, round });
        }, Math.max(0, effect.delayMs));
        this.timers.set(timer, cancel);
        return;
      }
      case 'cancel-timer':
        this.timers.get(effect.timer)?.();
        this.timers.delete(effect.timer);
        return;
      case 'ingest':
        return this.ingest(effect.nodeId, effect.frame);
      case 'release-slots':
        for (const id of effect.slots) {
          if (ArrivalFolds.isToken(id)) {
            this.folds.release(id);
            continue;
          }
          const slot = this.slots.get(id);
          if (!slot) continue;
          this.slots.delete(id);
          d.aggregator.release(slot);
        }
        return;
      case 'aggregate': {
        const { sessionId, round, plan } = effect;
        const kernel = plan.plan;
        let computed: Promise<{ aggregate: Float32Array; distances: ArrayLike<number> }>;
        if (plan.slots.some(ArrivalFolds.isToken)) {
          // Folded on arrival: the distances come from the updates' sketches; audits copy from the received
          // payloads, which the folds reference until now.
          if (this.state.round) d.audits?.capture(this.state.round, (id) => this.folds.slotOf(id));
          // The mean goes straight into the resident model's gradient buffer, where the step reads it.
          computed = this.folds.aggregate(round, plan.slots, kernel, plan.scales, d.model.aggregateTarget(sessionId));
        } else {
          const slots = plan.slots.map((id) => this.slots.get(id)!);
          // Audits copy the updates as the nodes sent them, before clipping scales any slot.
          if (this.state.round) d.audits?.capture(this.state.round, (id) => this.slots.get(id));
          // Norm clipping: the few updates over the limit are scaled in their slot before any rule reads them.
          plan.scales?.forEach((scale, i) => scale < 1 && scaleInPlace(slots[i].view, scale));
          // Every rule, the mean included, goes through aggregate(): its kernels measure each update's distance
          // from the result while the block is in cache, and those distances are the round's outlier scores.
          computed = d.aggregator.aggregate(slots, kernel);
        }
        computed
          .then(({ aggregate, distances }) => {
            d.model.holdAggregate(sessionId, round, aggregate);
            // The step starts now, out of place on an aggregator worker, while this thread writes the commit
            // (journal, transaction): published only by apply-update after the commit, so exactly-once is
            // untouched, and the round's close waits for the commit or the step, whichever is longer.
            void d.model.stage(sessionId, round);
            this.dispatch({ type: 'aggregation-done', at: this.now(), sessionId, round, distances: Array.from(distances) });
            // The commit's journal write has started: the next model frame's memory is readied while it runs.
            d.model.prepareFrame(sessionId);
          })
          .catch((error) => this.dispatch({ type: 'aggregation-failed', at: this.now(), sessionId, round, message: errorText(error) }));
        return;
      }
      case 'commit-round':
        return this.commitRound(effect);
      case 'apply-update':
        d.model.apply(effect.sessionId, effect.round);
        return;
      case 'discard-update':
        d.model.discard(effect.round);
        return;
      case 'create-session': {
        const { session, events } = effect;
        d.repo
          .createSession(session.config, session.startedAt, { id: session.id, outbox: events })
          .then(() => {
            d.model.init(session.id, session.config);
            d.live.reset(session.id);
            this.dispatch({ type: 'session-created', at: this.now(), sessionId: session.id });
          })
          .catch((error) => this.dispatch({ type: 'session-create-failed', at: this.now(), sessionId: session.id, message: errorText(error) }));
        return;
      }
      case 'persist-session': {
        const { session, events, purpose, requestId } = effect;
        const write = d.repo
          .updateSession(session, events)
          .then((records) => {
            this.dispatch({ type: 'session-persisted', at: this.now(), sessionId: session.id, purpose, requestId });
            d.deliver(records);
          })
          .catch((error) => this.dispatch({ type: 'session-persist-failed', at: this.now(), sessionId: session.id, purpose, requestId, message: errorText(error) }));
        this.track(write, 'save the session');
        return;
      }
      case 'record-rejection':
        this.track(d.repo.recordRejection(effect.record, effect.events).then((records) => d.deliver(records)), 'record a rejected update');
        return;
      case 'start-evaluator':
        d.evaluations.start(effect.sessionId, effect.model, effect.dataset);
        return;
      case 'stop-evaluator':
        this.track(d.evaluations.stop(), 'close the evaluator');
        return;
      case 'evaluate':
        void d.evaluations.evaluate(effect.sessionId, effect.round, effect.purpose);
        return;
      case 'record-evaluation':
        d.live.addEvaluation(effect.sessionId, effect.round, effect.loss, effect.accuracy);
        this.track(d.repo.recordEvaluation(effect.sessionId, effect.round, effect.loss, effect.accuracy), 'record an evaluation');
        return;
      case 'checkpoint': {
        const { sessionId, purpose } = effect;
        d.checkpointer
          .write(sessionId)
          .then(() => this.dispatch({ type: 'checkpoint-written', at: this.now(), sessionId, round: effect.round, purpose }))
          .catch((error) => this.dispatch({ type: 'checkpoint-failed', at: this.now(), sessionId, purpose, message: errorText(error) }));
        return;
      }
      case 'timeline':
        d.live.addTimeline(effect.event);
        this.track(d.repo.recordEvent(effect.event), 'record a timeline event');
        return;
      case 'publish-node': {
        const node = nodeSnapshot(this.state, effect.nodeId);
        if (node) d.live.publish({ type: 'node', node });
        return;
      }
      case 'publish-status':
        d.live.publish({ type: 'status', status: statusOf(this.state, this.now()) });
        this.wakeWaiters();
        return;
      case 'log':
        return this.log(effect.level, effect.message);
      case 'reply': {
        const pending = this.requests.get(effect.requestId);
        if (!pending) return;
        this.requests.delete(effect.requestId);
        const r = effect.reply;
        if (r.ok) pending.resolve(r.session);
        else pending.reject(r.code === 'INTERNAL' ? new Error(r.message) : new RequestError(r.code, r.message));
        this.wakeWaiters();
        return;
      }
    }
  }

  /** The mean takes its own path (no distances to compute); the robust rules go through aggregate(). */
  private aggregateSlots(slots: UpdateSlot[], kernel: Extract<Effect, { type: 'aggregate' }>['plan']['plan']): Promise<Float32Array> {
    const aggregator = this.deps.aggregator;
    return kernel.rule === 'weighted-mean' ? aggregator.weightedMean(slots, kernel.weights) : aggregator.aggregate(slots, kernel).then((r) => r.aggregate);
  }

  /**
   * Mean-type rules: checks the frame and folds it into the round's running sum in one pass over its bytes.
   * Other rules: copies it into an aggregator slot and inspects it there in one pass.
   */
  private ingest(nodeId: number, ref: number): void {
    const frame = this.frames.get(ref);
    if (!frame) throw new Error(`ingest asked for frame ${ref}, which is not waiting`);
    this.frames.delete(ref);
    const { header, bytes } = frame;
    if (this.folds.applies(this.state.durable.sessions.get(header.sessionId)?.config)) {
      this.immediate.push(this.folds.ingest(nodeId, header, bytes, this.now()));
      return;
    }
    const aggregator = this.deps.aggregator;
    let slot: UpdateSlot | null = null;
    try {
      slot = aggregator.acquire(header.paramCount);
      const acquired = slot;
      const { stats } = decodeFrameInto(bytes, slot.view, () => aggregator.inspect(acquired), header);
      this.slots.set(slot.id, slot);
      this.immediate.push({ type: 'update-ingested', at: this.now(), nodeId, header, slot: slot.id, stats });
    } catch (error) {
      if (slot) aggregator.release(slot);
      const code = error instanceof HyperGpuError ? error.code : 'BAD_MESSAGE';
      this.immediate.push({ type: 'update-ingest-failed', at: this.now(), nodeId, header, code, message: errorText(error) });
    }
  }

  /**
   * The order is what makes application exactly-once across crashes: journal the aggregate durably -> ONE
   * transaction with the round, contributions, metric, session and outbox events -> (engine) apply it to
   * the model. A crash before the transaction leaves a journal entry the ledger does not know (ignored at
   * recovery); after it, recovery replays the entry.
   */
  private commitRound(effect: Extract<Effect, { type: 'commit-round' }>): void {
    const d = this.deps;
    const { sessionId, round } = effect;
    const write = (async () => {
      if (effect.journal) {
        const update = d.model.aggregateOf(sessionId, round);
        if (!update) throw new Error(`round ${round} has no aggregate to journal`);
        const entry = { sessionId, round, modelVersion: effect.journal.modelVersion, samples: effect.journal.samples, update };
        // Safe to repeat: an append of a version the journal already holds supersedes it (update-journal.ts).
        await this.withRetries(`journal round ${round}`, () => d.journal.append(entry));
      }
      // Retried on its own, so a failed transaction does not write the journal entry again.
      const records = await this.withRetries(`commit round ${round}`, () => d.repo.recordRound(effect.summary, effect.contributions, effect.metric, effect.session, effect.events));
      // The step staged at aggregation (model-store.ts) is published by apply-update, right after this event.
      await d.model.whenStaged(sessionId, round);
      return records;
    })();
    write.then(
      (records) => {
        this.dispatch({ type: 'round-committed', at: this.now(), sessionId, round, events: effect.events });
        d.deliver(records);
      },
      (error) => this.dispatch({ type: 'commit-failed', at: this.now(), sessionId, round, message: errorText(error) }),
    );
  }

  private async withRetries<T>(what: string, work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await work();
      } catch (error) {
        const delay = COMMIT_RETRY_DELAYS_MS[attempt];
        if (delay === undefined || !isTransient(error)) throw error;
        this.log('warn', `${what} failed (${errorText(error)}); retry ${attempt + 1} of ${COMMIT_RETRY_DELAYS_MS.length} in ${delay} ms`);
        await new Promise<void>((resolve) => this.deps.clock.setTimeout(resolve, delay));
      }
    }
  }

  private wakeWaiters(): void {
    const snapshot = sessionSnapshot(this.state);
    if (!snapshot || this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((w) => {
      if (!w.predicate(snapshot)) return true;
      w.resolve(snapshot);
      return false;
    });
  }

  log(level: LogLine['level'], message: string): void {
    const line: LogLine = { at: this.now(), level, message };
    this.deps.live.addLog(line);
    this.deps.log?.(line);
  }

  private track(promise: Promise<unknown>, what: string): void {
    // A set, not a growing chain of Promise.all: finished work must not stay reachable for the process's life.
    const guarded: Promise<unknown> = promise
      .catch((error) => this.log('error', `failed to ${what}: ${errorText(error)}`))
      .finally(() => this.background.delete(guarded));
    this.background.add(guarded);
  }
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Multiplies a slot's values by `scale` (norm clipping; only the clipped slots, a few a round at most). */
function scaleInPlace(view: Float32Array, scale: number): void {
  for (let i = 0; i < view.length; i++) view[i] *= scale;
}
