// Drives the pure engine the way the runner does, with every effect answered at once and successfully
// (unless the test holds that kind of effect back), so an engine test reads as: events in, state and effects
// out. Time is the FakeClock's; timers are the engine's own set-timer effects. No ports, no promises.
import type { CommittedEvent } from '../../src/server/core/engine/committed';
import type { Effect, Reply } from '../../src/server/core/engine/effects';
import type { EngineEvent, EvaluationPurpose, TimerName } from '../../src/server/core/engine/events';
import { initialState, type EngineOptions, type EngineState } from '../../src/server/core/engine/state';
import { step } from '../../src/server/core/engine/step';
import { DEFAULT_DEADLINE_POLICY } from '../../src/server/core/deadline';
import { FrameKind } from '../../src/protocol/frame';
import type { Assignment, NodeCapabilities, SessionConfig } from '../../src/server/core/types';
import type { CoordinatorMessage } from '../../src/protocol/messages';
import { FakeClock } from './fakes';

export const CAPS: NodeCapabilities = { backend: 'cpu', device: 'test', samplesPerSecond: 100, agentVersion: 't', hostname: 'h' };

type Held = 'aggregate' | 'commit-round' | 'evaluate' | 'checkpoint' | 'persist-session' | 'create-session';

export class EngineDriver {
  state: EngineState;
  readonly clock = new FakeClock();
  /** Every effect, in order. */
  readonly effects: Effect[] = [];
  /** Committed events in the order the engine took them in (what the outbox would hold). */
  readonly committed: CommittedEvent[] = [];
  readonly replies = new Map<number, Reply>();
  readonly hold = new Set<Held>();
  readonly held: Effect[] = [];
  /** Accuracy an evaluation reports, by purpose and round. */
  accuracy: (purpose: EvaluationPurpose, round: number) => number = () => 0.5;
  /** sumSquares of the next ingested payloads (the norm check reads it). */
  sumSquares = 1;
  /** sumSquares per node, over `sumSquares` (norm clipping reads the norms). */
  readonly sumSquaresOf = new Map<number, number>();
  /** Distances the aggregator reports for an aggregate effect (the outlier scores); none by default. */
  distancesFor: ((effect: Extract<Effect, { type: 'aggregate' }>) => number[] | undefined) | null = null;
  private timers = new Map<TimerName, () => void>();
  private queue: EngineEvent[] = [];
  private nextRequest = 1;
  private nextSlot = 1;
  private connections = new Map<number, number>();
  private nextConnection = 1;
  readonly liveSlots = new Set<number>();

  constructor(options: Partial<EngineOptions> = {}) {
    this.state = initialState({ heartbeatMs: 100, heartbeatTimeoutMs: 60_000, deadline: DEFAULT_DEADLINE_POLICY, normRatio: 10, ...options }, this.clock.now());
    this.send({ type: 'booted', at: this.clock.now(), seed: 0x5eed });
  }

  get now(): number {
    return this.clock.now();
  }

  /** Steps an event and everything its effects answer, like the runner's drain. */
  send(event: EngineEvent): Effect[] {
    const start = this.effects.length;
    this.queue.push(event);
    this.pump();
    return this.effects.slice(start);
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const next = this.queue.shift()!;
      const result = step(this.state, next);
      this.state = result.state;
      for (const effect of result.effects) this.handle(effect);
    }
  }

  request(type: 'pause' | 'resume' | 'stop' | 'shutdown'): Reply | undefined {
    const requestId = this.nextRequest++;
    this.send({ type, at: this.now, requestId });
    return this.replies.get(requestId);
  }

  start(config: Partial<SessionConfig> = {}, trainSize = 1000, paramCount = 8): Reply | undefined {
    const requestId = this.nextRequest++;
    this.send({ type: 'start', at: this.now, requestId, config: { ...TEST_CONFIG, ...config, optimizer: { ...TEST_CONFIG.optimizer, ...config.optimizer } }, trainSize, paramCount });
    return this.replies.get(requestId);
  }

  /** Registers node `id` on a new connection and, when a session runs, marks it ready. */
  join(nodeId: number, name = `n${nodeId}`, capabilities: NodeCapabilities = CAPS): number {
    const connection = this.nextConnection++;
    this.connections.set(nodeId, connection);
    this.send({ type: 'node-registered', at: this.now, nodeId, name, capabilities, connection, issuedToken: null });
    const sessionId = this.state.session?.id;
    if (sessionId !== undefined) this.send({ type: 'node-ready', at: this.now, nodeId, connection, sessionId });
    return connection;
  }

  ready(nodeId: number): void {
    this.send({ type: 'node-ready', at: this.now, nodeId, connection: this.connections.get(nodeId)!, sessionId: this.state.session!.id });
  }

  lose(nodeId: number, reason = 'connection closed', left = false): void {
    this.send({ type: 'node-lost', at: this.now, nodeId, connection: this.connections.get(nodeId)!, reason, left });
  }

  heartbeat(nodeId: number): void {
    this.send({ type: 'heartbeat', at: this.now, nodeId, connection: this.connections.get(nodeId)! });
  }

  connectionOf(nodeId: number): number {
    return this.connections.get(nodeId)!;
  }

  /** The latest message of a type sent to a node. */
  lastSent<T extends CoordinatorMessage['type']>(nodeId: number, type: T): Extract<CoordinatorMessage, { type: T }> | undefined {
    for (let i = this.effects.length - 1; i >= 0; i--) {
      const e = this.effects[i];
      if (e.type === 'send' && e.nodeId === nodeId && e.message.type === type) return e.message as Extract<CoordinatorMessage, { type: T }>;
    }
    return undefined;
  }

  assignment(nodeId: number): Assignment | undefined {
    return this.lastSent(nodeId, 'assignment')?.assignment;
  }

  /** Delivers an update answering the node's latest assignment (fields overridable to forge bad ones). */
  deliver(nodeId: number, overrides: Partial<Assignment & { sampleCount: number; paramCount: number; kind: FrameKind }> = {}): Effect[] {
    const a = { ...this.assignment(nodeId)!, ...overrides };
    const header = {
      kind: overrides.kind ?? FrameKind.Gradient,
      sessionId: a.sessionId,
      round: a.round,
      nodeId: a.nodeId,
      attempt: a.attempt,
      modelVersion: a.modelVersion,
      sampleCount: overrides.sampleCount ?? a.shardCount,
      paramCount: overrides.paramCount ?? this.state.durable.sessions.get(a.sessionId)?.paramCount ?? 8,
      checksum: 7,
      trainLoss: 0.5,
    };
    return this.send({ type: 'update-arrived', at: this.now, nodeId, connection: this.connections.get(nodeId)!, frame: 0, header, error: null });
  }

  advance(ms: number): void {
    this.clock.advance(ms);
  }

  /** Answers the effects held back so far (all of them, or those of one kind). */
  release(kind?: Held): Effect[] {
    const from = this.effects.length;
    const now = this.held.filter((e) => !kind || e.type === kind);
    for (const e of now) this.held.splice(this.held.indexOf(e), 1);
    for (const e of now) this.answerNow(e);
    this.pump();
    return this.effects.slice(from);
  }

  private handle(effect: Effect): void {
    this.effects.push(effect);
    switch (effect.type) {
      case 'set-timer': {
        this.timers.get(effect.timer)?.();
        const { timer, round } = effect;
        const cancel = this.clock.setTimeout(() => {
          this.timers.delete(timer);
          this.send({ type: 'timer-fired', at: this.now, timer, round });
        }, effect.delayMs);
        this.timers.set(timer, cancel);
        return;
      }
      case 'cancel-timer':
        this.timers.get(effect.timer)?.();
        this.timers.delete(effect.timer);
        return;
      case 'ingest': {
        const slot = this.nextSlot++;
        this.liveSlots.add(slot);
        this.queue.unshift({ type: 'update-ingested', at: this.now, nodeId: effect.nodeId, header: effect.header, slot, stats: { checksum: effect.header.checksum, nonFinite: 0, sumSquares: this.sumSquaresOf.get(effect.nodeId) ?? this.sumSquares } });
        return;
      }
      case 'release-slots':
        for (const s of effect.slots) this.liveSlots.delete(s);
        return;
      case 'persist-session':
      case 'record-rejection':
        this.committed.push(...effect.events);
        break;
      case 'reply':
        this.replies.set(effect.requestId, effect.reply);
        return;
    }
    if (this.hold.has(effect.type as Held) && this.answers(effect)) {
      this.held.push(effect);
      return;
    }
    this.answerNow(effect);
  }

  private answerNow(effect: Effect): void {
    const answer = this.answer(effect);
    if (answer) this.queue.push(answer);
    if (answer?.type === 'round-committed') this.periodicEvaluation(answer.sessionId, answer.round, (effect as Extract<Effect, { type: 'commit-round' }>).summary.modelVersion);
  }

  private answers(effect: Effect): boolean {
    return ['aggregate', 'commit-round', 'create-session', 'persist-session', 'evaluate', 'checkpoint'].includes(effect.type);
  }

  /** What the evaluation outbox consumer does: evaluate every `evalEvery` committed rounds. */
  private periodicEvaluation(sessionId: number, round: number, modelVersion: number): void {
    const config = this.state.durable.sessions.get(sessionId)?.config;
    if (!config || round % config.evalEvery !== 0) return;
    this.queue.push({ type: 'evaluation-done', at: this.now, sessionId, round, modelVersion, loss: 0.3, accuracy: this.accuracy('periodic', round), purpose: 'periodic' });
  }

  private answer(effect: Effect): EngineEvent | null {
    const at = this.now;
    switch (effect.type) {
      case 'aggregate': {
        const distances = this.distancesFor?.(effect);
        return { type: 'aggregation-done', at, sessionId: effect.sessionId, round: effect.round, ...(distances ? { distances } : {}) };
      }
      case 'commit-round':
        this.committed.push(...effect.events);
        return { type: 'round-committed', at, sessionId: effect.sessionId, round: effect.round, events: effect.events };
      case 'create-session':
        this.committed.push(...effect.events);
        return { type: 'session-created', at, sessionId: effect.session.id };
      case 'persist-session':
        return { type: 'session-persisted', at, sessionId: effect.session.id, purpose: effect.purpose, requestId: effect.requestId };
      case 'evaluate': {
        const version = this.state.durable.sessions.get(effect.sessionId)?.modelVersion ?? 0;
        return { type: 'evaluation-done', at, sessionId: effect.sessionId, round: effect.round, modelVersion: version, loss: 0.3, accuracy: this.accuracy(effect.purpose, effect.round), purpose: effect.purpose };
      }
      case 'checkpoint':
        return { type: 'checkpoint-written', at, sessionId: effect.sessionId, round: effect.round, purpose: effect.purpose };
      default:
        return null;
    }
  }

  /** Effects of a type since index `from`. */
  of<T extends Effect['type']>(type: T, from = 0): Extract<Effect, { type: T }>[] {
    return this.effects.slice(from).filter((e): e is Extract<Effect, { type: T }> => e.type === type);
  }
}

export const TEST_CONFIG: SessionConfig = {
  model: 'mlp',
  dataset: 'mnist',
  optimizer: { name: 'sgd', learningRate: 0.5, momentum: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  batchSize: 100,
  maxRounds: null,
  targetAccuracy: null,
  evalEvery: 1000,
  checkpointEvery: 1000,
  seed: 42,
  roundTimeoutMs: 5000,
  minUpdates: 1,
  minCompletion: 0.5,
  maxSamples: null,
  maxUpdateNorm: 1e5,
};
