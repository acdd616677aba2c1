// Session control and what follows a commit: start, pause, resume, stop, completion on a target or a budget,
// recovery after a restart, and graceful shutdown. Multi-step work (ending a session, shutting down) is a
// small state machine: each stage asks for one effect and moves on when its result comes back.
import type { MetricPoint } from '../types';
import type { CommittedEvent, DurableSession } from './committed';
import type { EngineEvent, PersistPurpose } from './events';
import type { Reply } from './effects';
import { maybeOpenRound } from './open-round';
import { cancelRound, flushClips, flushRejections } from './rounds';
import type { RequestId, SessionEnding } from './state';
import type { Transition } from './transition';
import { sessionDescriptor, sessionSnapshot } from './views';
import { changeNode } from './node-pool';
import { describeAggregation } from './strategy';

const percent = (x: number) => `${(x * 100).toFixed(2)}%`;

function reply(t: Transition, requestId: RequestId | null, result: Reply): void {
  if (requestId !== null) t.emit({ type: 'reply', requestId, reply: result });
}

function conflict(t: Transition, requestId: RequestId, message: string): void {
  reply(t, requestId, { ok: false, code: 'CONFLICT', message });
}

function durableSession(t: Transition) {
  return t.state.session ? t.state.durable.sessions.get(t.state.session.id) ?? null : null;
}

/** Changes the session's durable state or message: folded in now, written with its outbox event. */
function persist(t: Transition, change: { state?: 'running' | 'paused' | 'stopped' | 'completed' | 'failed'; message: string | null; endedAt?: number | null }, purpose: PersistPurpose, requestId: RequestId | null): void {
  const session = durableSession(t)!;
  const events: CommittedEvent[] = [
    { kind: 'session-state-changed', sessionId: session.id, at: t.at, state: change.state ?? session.state, message: change.message, endedAt: change.endedAt ?? session.endedAt },
  ];
  t.commit(events);
  t.emit({ type: 'persist-session', session: sessionSnapshot(t.state)!, events, purpose, requestId });
}

/** Tells every connected agent which session to load now (null: none); they answer `ready` once loaded. */
function broadcastSession(t: Transition): void {
  const session = sessionDescriptor(t.state);
  const pool = new Map(t.state.pool);
  for (const node of pool.values()) {
    if (node.connection === null) continue;
    changeNode(pool, node.id, (n) => ({ ...n, readySession: null }));
    t.emit({ type: 'send', nodeId: node.id, message: { v: 1, type: 'session', session } });
  }
  t.set({ pool });
}

export function onStart(t: Transition, e: Extract<EngineEvent, { type: 'start' }>): void {
  const current = durableSession(t);
  if (t.state.shuttingDown) return conflict(t, e.requestId, 'the coordinator is shutting down');
  if (t.state.starting) return conflict(t, e.requestId, `session ${t.state.starting.sessionId} is being started`);
  if (t.state.session?.ending) return conflict(t, e.requestId, `session ${t.state.session.id} is ending; start another once it has`);
  if (current && (current.state === 'running' || current.state === 'paused')) {
    return conflict(t, e.requestId, `session ${current.id} is ${current.state}; stop it before starting another`);
  }
  const sessionId = t.state.lastSessionId + 1;
  t.set({ lastSessionId: sessionId, starting: { requestId: e.requestId, sessionId, config: e.config, trainSize: e.trainSize, paramCount: e.paramCount, at: e.at } });
  const events: CommittedEvent[] = [{ kind: 'session-started', sessionId, at: e.at, config: e.config, trainSize: e.trainSize, paramCount: e.paramCount }];
  const snapshot = {
    id: sessionId,
    state: 'running' as const,
    config: e.config,
    round: 0,
    modelVersion: 0,
    epoch: 0,
    totalSamples: 0,
    startedAt: e.at,
    endedAt: null,
    lastTestAccuracy: null,
    lastTestLoss: null,
    lastRoundDurationMs: null,
    samplesPerSecond: 0,
    message: null,
  };
  t.emit({ type: 'create-session', session: snapshot, events });
}

export function onSessionCreated(t: Transition, e: Extract<EngineEvent, { type: 'session-created' }>): void {
  const starting = t.state.starting;
  if (!starting || starting.sessionId !== e.sessionId) return;
  t.set({ starting: null, round: null });
  t.commit([{ kind: 'session-started', sessionId: starting.sessionId, at: starting.at, config: starting.config, trainSize: starting.trainSize, paramCount: starting.paramCount }]);
  t.set({
    session: { id: e.sessionId, cursor: { epoch: 0, position: 0, pending: [] }, arrivals: [], norms: [], recent: [], lastTestAccuracy: null, lastTestLoss: null, samplesPerSecond: 0, lastRoundDurationMs: null, completionPending: false, ending: null, rejections: new Map(), rejectionsSince: null },
  });
  const c = starting.config;
  const description =
    `${c.model} on ${c.dataset}, ${c.optimizer.name} lr ${c.optimizer.learningRate}, batch ${c.batchSize}/node` +
    (c.targetAccuracy ? `, target accuracy ${c.targetAccuracy}` : '') +
    (c.maxRounds ? `, at most ${c.maxRounds} rounds` : '') +
    (c.maxSamples ? `, budget ${c.maxSamples} samples` : '') +
    (c.localSteps !== undefined && c.localSteps !== 1 ? `, local steps H = ${c.localSteps} (outer: Nesterov lr ${c.outerOptimizer?.learningRate ?? 0.7})` : '') +
    (c.codec && c.codec !== 'float32' ? `, codec ${c.codec}${c.codec === 'top-k' ? ` ${c.topKFraction ?? 0.01}` : ''}` : '') +
    `; aggregation: ${describeAggregation(c)}`;
  t.log('info', `session ${e.sessionId} started: ${description}`);
  t.timeline('session-started', `session started: ${description}`);
  t.emit({ type: 'start-evaluator', sessionId: e.sessionId, model: c.model, dataset: c.dataset });
  broadcastSession(t);
  for (const id of t.state.pool.keys()) t.publishNode(id); // credit starts from zero
  t.publishStatus();
  reply(t, starting.requestId, { ok: true, session: sessionSnapshot(t.state) });
  maybeOpenRound(t);
}

export function onSessionCreateFailed(t: Transition, e: Extract<EngineEvent, { type: 'session-create-failed' }>): void {
  const starting = t.state.starting;
  if (!starting || starting.sessionId !== e.sessionId) return;
  t.set({ starting: null });
  t.log('error', `session ${e.sessionId} could not be created: ${e.message}`);
  reply(t, starting.requestId, { ok: false, code: 'INTERNAL', message: `the session could not be created: ${e.message}` });
}

export function onPause(t: Transition, requestId: RequestId): void {
  const session = durableSession(t);
  if (!session || t.state.session?.ending) return conflict(t, requestId, 'there is no session to pause; start one first');
  if (session.state !== 'running') return conflict(t, requestId, `cannot pause session ${session.id}: it is ${session.state}`);
  // The open round still finishes and is applied; no new round opens until resume.
  persist(t, { state: 'paused', message: `paused at round ${session.round}` }, 'control', requestId);
  t.log('info', `session ${session.id} paused at round ${session.round}`);
  t.timeline('session-paused', `paused at round ${session.round}`);
  t.publishStatus();
}

export function onResume(t: Transition, requestId: RequestId): void {
  const session = durableSession(t);
  if (!session || t.state.session?.ending) return conflict(t, requestId, 'there is no session to resume; start one first');
  if (session.state !== 'paused') return conflict(t, requestId, `cannot resume session ${session.id}: it is ${session.state}`);
  persist(t, { state: 'running', message: null }, 'control', requestId);
  t.log('info', `session ${session.id} resumed at round ${session.round}`);
  t.timeline('session-resumed', `resumed at round ${session.round}`);
  t.publishStatus();
  continueSession(t);
}

export function onStop(t: Transition, requestId: RequestId): void {
  const session = durableSession(t);
  if (!session || t.state.session?.ending) return conflict(t, requestId, 'there is no session to stop; start one first');
  if (session.state !== 'running' && session.state !== 'paused') return conflict(t, requestId, `cannot stop session ${session.id}: it is ${session.state}`);
  beginEnding(t, 'stopped', `stopped by the operator at round ${session.round}`, requestId, false);
}

/**
 * Ends the session: no new round opens; a round still collecting is cancelled (its shards returned), one being
 * committed finishes first. Then the final model is evaluated (unless it just was), checkpointed, and the
 * session's end persisted; each stage moves on whether or not the one before it succeeded.
 */
export function beginEnding(t: Transition, state: SessionEnding['state'], message: string, requestId: RequestId | null, evaluated: boolean): void {
  const live = t.state.session!;
  const ending: SessionEnding = { state, message, at: t.at, stage: 'waiting-for-round', requestId };
  t.setSession({ ending, completionPending: false });
  flushRejections(t);
  flushClips(t);
  t.log('info', `session ${live.id} ${state === 'completed' ? 'completing' : 'stopping'}: ${message}`);
  if (t.state.round?.stage === 'collecting') cancelRound(t, `session ${state}`);
  if (t.state.round) return; // aggregating or committing: continueEnding runs once it has committed
  continueEnding(t, evaluated);
}

/**
 * Why the session is done (its round limit or sample budget reached, or the model as it is now evaluated at or
 * over the target accuracy), or null.
 */
export function limitReached(session: Pick<DurableSession, 'round' | 'totalSamples' | 'config'>, recent: readonly MetricPoint[] = []): string | null {
  const { maxRounds, maxSamples, targetAccuracy } = session.config;
  if (maxRounds !== null && session.round >= maxRounds) return `reached ${session.round} rounds`;
  if (maxSamples !== null && session.totalSamples >= maxSamples) return `applied its budget of ${maxSamples} samples (${session.totalSamples})`;
  const last = recent.at(-1);
  if (targetAccuracy !== null && last && last.round === session.round && last.testAccuracy !== null && last.testAccuracy >= targetAccuracy) {
    return `reached test accuracy ${percent(last.testAccuracy)} (target ${percent(targetAccuracy)}) at round ${last.round}`;
  }
  return null;
}

/**
 * What a session does next when nothing is in flight: completes when it is done (limitReached), else opens a
 * round. The paths where a session may already be done come here: after a round, after a confirming evaluation,
 * on resume, and after a restart (a coordinator killed between the round that finished the session and the
 * completion's commit comes back with a running session that no round may open for). A session just started and
 * a node becoming ready call maybeOpenRound directly: a session cannot be done there without having passed one
 * of these first.
 */
export function continueSession(t: Transition): void {
  const session = durableSession(t);
  const live = t.state.session;
  if (session && live && !live.ending && !t.state.round && (session.state === 'running' || session.state === 'paused')) {
    const done = limitReached(session, live.recent);
    if (done) return beginEnding(t, 'completed', done, null, false);
  }
  maybeOpenRound(t);
}

export function continueEnding(t: Transition, evaluated = false): void {
  const live = t.state.session!;
  const ending = live.ending!;
  const session = durableSession(t)!;
  const last = live.recent.at(-1);
  if (ending.stage === 'waiting-for-round' && !evaluated && last && last.round === session.round && last.testAccuracy === null) {
    t.setSession({ ending: { ...ending, stage: 'evaluating' } });
    t.emit({ type: 'evaluate', sessionId: live.id, round: session.round, purpose: 'final' });
    return;
  }
  if (ending.stage === 'waiting-for-round' || ending.stage === 'evaluating') {
    t.setSession({ ending: { ...ending, stage: 'checkpointing' } });
    t.emit({ type: 'checkpoint', sessionId: live.id, round: session.round, purpose: 'final' });
    return;
  }
  if (ending.stage === 'checkpointing') {
    t.setSession({ ending: { ...ending, stage: 'persisting' } });
    persist(t, { state: ending.state, message: ending.message, endedAt: ending.at }, 'ending', ending.requestId);
    return;
  }
}

function finishEnding(t: Transition): void {
  const live = t.state.session!;
  const ending = live.ending!;
  t.setSession({ ending: null });
  t.log('info', `session ${live.id} ${ending.state}: ${ending.message}`);
  t.timeline(ending.state === 'completed' ? 'session-completed' : 'session-stopped', ending.message);
  // The evaluator is a worker holding tfjs and the test set (100+ MB): an ended session lets it go.
  t.emit({ type: 'stop-evaluator' });
  broadcastSession(t);
  t.publishStatus();
  reply(t, ending.requestId, { ok: true, session: sessionSnapshot(t.state) });
  if (t.state.shuttingDown?.stage === 'waiting-for-round') continueShutdown(t);
}

export function onSessionPersisted(t: Transition, e: Extract<EngineEvent, { type: 'session-persisted' | 'session-persist-failed' }>): void {
  if (e.type === 'session-persist-failed') t.log('error', `session ${e.sessionId} could not be saved (${e.purpose}): ${e.message}`);
  if (e.purpose === 'ending' && t.state.session?.ending?.stage === 'persisting') return finishEnding(t);
  if (e.purpose === 'shutdown') return finishShutdown(t);
  if (e.purpose === 'control' || e.purpose === 'recovered') {
    if (e.type === 'session-persist-failed') return reply(t, e.requestId, { ok: false, code: 'INTERNAL', message: `the change is in effect but could not be saved: ${e.message}` });
    reply(t, e.requestId, { ok: true, session: sessionSnapshot(t.state) });
  }
}

export function onShutdown(t: Transition, requestId: RequestId): void {
  if (t.state.shuttingDown) return conflict(t, requestId, 'the coordinator is already shutting down');
  t.set({ shuttingDown: { requestId, stage: 'waiting-for-round' } });
  t.emit({ type: 'cancel-timer', timer: 'sweep' });
  flushRejections(t);
  flushClips(t);
  if (t.state.round?.stage === 'collecting') cancelRound(t, 'coordinator shutting down');
  if (t.state.round || t.state.session?.ending) return; // continues once the round commits or the ending finishes
  continueShutdown(t);
}

export function continueShutdown(t: Transition): void {
  const session = durableSession(t);
  if (t.state.round?.stage === 'collecting') cancelRound(t, 'coordinator shutting down');
  if (session && (session.state === 'running' || session.state === 'paused')) {
    t.set({ shuttingDown: { ...t.state.shuttingDown!, stage: 'checkpointing' } });
    t.emit({ type: 'checkpoint', sessionId: session.id, round: session.round, purpose: 'shutdown' });
    return;
  }
  finishShutdown(t);
}

export function onShutdownCheckpoint(t: Transition): void {
  const session = durableSession(t)!;
  t.set({ shuttingDown: { ...t.state.shuttingDown!, stage: 'persisting' } });
  persist(t, { message: `coordinator shut down at round ${session.round}; it resumes on the next start` }, 'shutdown', null);
}

function finishShutdown(t: Transition): void {
  const shutdown = t.state.shuttingDown;
  if (!shutdown || shutdown.stage === 'done') return;
  t.set({ shuttingDown: { ...shutdown, stage: 'done' } });
  reply(t, shutdown.requestId, { ok: true, session: sessionSnapshot(t.state) });
}

/** An evaluation came back: record it, and see whether the session reached its target. */
export function onEvaluationDone(t: Transition, e: Extract<EngineEvent, { type: 'evaluation-done' }>): void {
  const live = t.state.session;
  const session = durableSession(t);
  if (!live || !session || live.id !== e.sessionId) return;
  const recent = live.recent.map((m) => (m.round === e.round ? { ...m, testLoss: e.loss, testAccuracy: e.accuracy } : m));
  t.setSession({ lastTestAccuracy: e.accuracy, lastTestLoss: e.loss, recent });
  t.emit({ type: 'record-evaluation', sessionId: e.sessionId, round: e.round, loss: e.loss, accuracy: e.accuracy });
  t.log('info', `round ${e.round}: test accuracy ${percent(e.accuracy)}, test loss ${e.loss.toFixed(4)}, ${Math.round(live.samplesPerSecond)} samples/s`);
  t.publishStatus();
  if (e.purpose === 'final') {
    if (live.ending?.stage === 'evaluating') continueEnding(t);
    return;
  }
  const target = session.config.targetAccuracy;
  const reached = target !== null && e.accuracy >= target;
  if (e.purpose === 'confirm') {
    t.setSession({ completionPending: false });
    if (reached && !live.ending && (session.state === 'running' || session.state === 'paused')) {
      return beginEnding(t, 'completed', `reached test accuracy ${percent(e.accuracy)} (target ${percent(target!)}) at round ${e.round}`, null, true);
    }
    if (!reached) t.log('info', `the model at round ${e.round} scores ${percent(e.accuracy)}, below the target after all`);
    // The round that was in flight may have been the last the session's limits allow.
    return continueSession(t);
  }
  if (!reached || live.ending || session.state !== 'running' || live.completionPending) return;
  const message = `reached test accuracy ${percent(e.accuracy)} (target ${percent(target!)}) at round ${e.round}`;
  if (e.modelVersion === session.modelVersion && !t.state.round) return beginEnding(t, 'completed', message, null, true);
  // Rounds went on while this evaluation ran, so the model now is not the one that reached the target.
  // Open no new round; once the round in flight commits, the model as it is then must pass as well.
  t.setSession({ completionPending: true });
  t.log('info', `${message}; confirming on the final model`);
  if (!t.state.round) t.emit({ type: 'evaluate', sessionId: session.id, round: session.round, purpose: 'confirm' });
}

export function onEvaluationFailed(t: Transition, e: Extract<EngineEvent, { type: 'evaluation-failed' }>): void {
  const live = t.state.session;
  if (!live || live.id !== e.sessionId) return;
  t.log('warn', `${e.purpose} evaluation of round ${e.round} failed: ${e.message}`);
  if (e.purpose === 'final' && live.ending?.stage === 'evaluating') return continueEnding(t);
  if (e.purpose === 'confirm') {
    t.setSession({ completionPending: false });
    continueSession(t);
  }
}

export function onCheckpointResult(t: Transition, e: Extract<EngineEvent, { type: 'checkpoint-written' | 'checkpoint-failed' }>): void {
  if (e.type === 'checkpoint-failed') t.log('error', `${e.purpose} checkpoint of session ${e.sessionId} failed: ${e.message}; the journal still holds every applied update`);
  if (e.purpose === 'final' && t.state.session?.ending?.stage === 'checkpointing') return continueEnding(t);
  if (e.purpose === 'shutdown' && t.state.shuttingDown?.stage === 'checkpointing') return onShutdownCheckpoint(t);
}

export function onRecovered(t: Transition, e: Extract<EngineEvent, { type: 'recovered' }>): void {
  const s = e.session;
  t.set({
    lastSessionId: Math.max(t.state.lastSessionId, s.id),
    durable: { sessions: new Map([...t.state.durable.sessions, [s.id, s]]), credits: new Map([...t.state.durable.credits, [s.id, e.credits]]) },
    session: { id: s.id, cursor: structuredClone(s.cursor), arrivals: [], norms: [], recent: e.recent, lastTestAccuracy: e.lastTestAccuracy, lastTestLoss: e.lastTestLoss, samplesPerSecond: 0, lastRoundDurationMs: null, completionPending: false, ending: null, rejections: new Map(), rejectionsSince: null },
    round: null,
  });
  const message = `resumed after a coordinator restart from ${e.how}`;
  t.log('info', `session ${s.id} ${message}: model version ${s.modelVersion}, round ${s.round}`);
  t.timeline('coordinator-restarted', `coordinator restarted; resumed from ${e.how}`, null, e.detail);
  persist(t, { message }, 'recovered', e.requestId);
  t.emit({ type: 'start-evaluator', sessionId: s.id, model: s.config.model, dataset: s.config.dataset });
  broadcastSession(t);
  for (const id of t.state.pool.keys()) t.publishNode(id);
  t.publishStatus();
  continueSession(t);
}
