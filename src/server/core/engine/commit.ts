// After a round's transaction: the durable state moves on by the events it committed, the model may take the
// update, and the session decides what comes next (another round, completion, or the stop that was waiting).
import type { EngineEvent } from './events';
import { cancelRound } from './rounds';
import { continueEnding, continueSession, continueShutdown } from './session';
import type { Transition } from './transition';
import { sessionSnapshot } from './views';

const RECENT_METRICS = 20;

export function onRoundCommitted(t: Transition, e: Extract<EngineEvent, { type: 'round-committed' }>): void {
  const round = t.state.round;
  const live = t.state.session;
  if (!round || round.stage !== 'committing' || round.open.round !== e.round || !live || live.id !== e.sessionId) return;
  const outcome = round.outcome!;
  t.commit(e.events);
  // Durable: now the in-memory model may advance.
  if (outcome.apply) t.emit({ type: 'apply-update', sessionId: e.sessionId, round: e.round });
  const committed = e.events.find((c) => c.kind === 'round-committed');
  const metric = committed?.kind === 'round-committed' ? committed.metric : null;
  if (metric) {
    t.setSession({ recent: [...live.recent, metric].slice(-RECENT_METRICS), samplesPerSecond: metric.samplesPerSecond, lastRoundDurationMs: metric.roundDurationMs });
  }
  for (const u of outcome.accepted) t.publishNode(u.nodeId);
  if (!outcome.apply) {
    t.log('warn', `round ${e.round} not applied (${round.closedBecause}): ${outcome.reason}`);
    t.timeline('round-not-applied', `round ${e.round} not applied (${round.closedBecause}): ${outcome.reason}`);
  }
  for (const c of e.events) if (c.kind === 'epoch-closed') t.log('info', `epoch ${c.epoch} closed at round ${c.round}: every sample of it is in the model`);
  t.set({ round: null });
  t.publishStatus();
  afterRound(t);
}

/**
 * The audits of an epoch are resolved and committed: the durable state takes the forfeits in, and each node
 * caught is flagged where operators look (its status reason, the log, the timeline).
 */
export function onEpochAudited(t: Transition, e: Extract<EngineEvent, { type: 'epoch-audited' }>): void {
  t.commit([e.event]);
  if (t.state.session?.id !== e.event.sessionId) return;
  for (const nodeId of e.event.forfeitedNodeIds) {
    const node = t.state.pool.get(nodeId);
    const name = node ? `${node.name} (#${nodeId})` : `node #${nodeId}`;
    const reason = e.reasons[nodeId] ?? `AUDIT_FAILED: epoch ${e.event.epoch} credit forfeited`;
    t.log('warn', `${name}: ${reason}`);
    t.timeline('node-audit-failed', `${name}: ${reason}`, nodeId, { epoch: e.event.epoch });
    if (node) {
      const pool = new Map(t.state.pool);
      pool.set(nodeId, { ...node, statusReason: `audit failed in epoch ${e.event.epoch}: credit forfeited` });
      t.set({ pool });
    }
    t.publishNode(nodeId);
  }
}

/**
 * The round's transaction failed (a busy or broken database): nothing of it is durable, so the model does not
 * take the update, its shards go back, and the session pauses with the reason instead of failing outright.
 */
export function onCommitFailed(t: Transition, e: Extract<EngineEvent, { type: 'commit-failed' }>): void {
  const round = t.state.round;
  if (!round || round.stage !== 'committing' || round.open.round !== e.round) return;
  t.emit({ type: 'discard-update', sessionId: e.sessionId, round: e.round });
  t.log('error', `round ${e.round} of session ${e.sessionId} could not be committed: ${e.message}`);
  cancelRound(t, `COMMIT_FAILED: round ${e.round} could not be committed: ${e.message}`);
  const live = t.state.session!;
  if (live.ending || t.state.shuttingDown) return afterRound(t);
  const session = t.state.durable.sessions.get(live.id)!;
  if (session.state === 'running') {
    const message = `paused: round ${e.round} could not be committed (${e.message}); resume once the database is writable`;
    const events = [{ kind: 'session-state-changed' as const, sessionId: session.id, at: t.at, state: 'paused' as const, message, endedAt: null }];
    t.commit(events);
    t.emit({ type: 'persist-session', session: sessionSnapshot(t.state)!, events, purpose: 'control', requestId: null });
    t.timeline('session-paused', message);
    t.publishStatus();
  }
}

/** The aggregator failed (a crashed worker): the round is dropped whole, its shards go back, training goes on. */
export function onAggregationFailed(t: Transition, e: Extract<EngineEvent, { type: 'aggregation-failed' }>): void {
  const round = t.state.round;
  if (!round || round.stage !== 'aggregating' || round.open.round !== e.round) return;
  t.log('error', `round ${e.round} could not be aggregated (${e.message}); its updates are dropped and their shards handed out again`);
  cancelRound(t, `AGGREGATION_FAILED: ${e.message}`);
  afterRound(t);
}

/** What comes after a round: the ending or shutdown that waited for it, completion, or the next round. */
function afterRound(t: Transition): void {
  const live = t.state.session!;
  if (live.ending) return continueEnding(t);
  if (t.state.shuttingDown) return continueShutdown(t);
  const session = t.state.durable.sessions.get(live.id)!;
  if (live.completionPending) {
    t.emit({ type: 'evaluate', sessionId: session.id, round: session.round, purpose: 'confirm' });
    return;
  }
  continueSession(t);
}
