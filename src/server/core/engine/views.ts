// Read models of the engine's state: what the API, the dashboard and agents are shown. Pure.
import type { SessionDescriptor } from '../../../protocol/messages';
import type { StatusSnapshot } from '../events';
import type { NodeSnapshot, SessionSnapshot } from '../types';
import { NO_CREDIT } from './committed';
import { toSnapshot } from './node-pool';
import type { EngineState } from './state';

export function sessionSnapshot(state: EngineState): SessionSnapshot | null {
  const live = state.session;
  if (!live) return null;
  const durable = state.durable.sessions.get(live.id);
  if (!durable) return null;
  return {
    id: durable.id,
    state: durable.state,
    config: durable.config,
    round: durable.round,
    modelVersion: durable.modelVersion,
    epoch: durable.epoch,
    totalSamples: durable.totalSamples,
    startedAt: durable.startedAt,
    endedAt: durable.endedAt,
    lastTestAccuracy: live.lastTestAccuracy,
    lastTestLoss: live.lastTestLoss,
    lastRoundDurationMs: live.lastRoundDurationMs,
    samplesPerSecond: live.samplesPerSecond,
    message: durable.message,
  };
}

/** The session agents should load: only a running or paused one. */
export function sessionDescriptor(state: EngineState): SessionDescriptor | null {
  const snapshot = sessionSnapshot(state);
  if (!snapshot || (snapshot.state !== 'running' && snapshot.state !== 'paused') || state.session?.ending) return null;
  const durable = state.durable.sessions.get(snapshot.id)!;
  return { sessionId: snapshot.id, model: snapshot.config.model, dataset: snapshot.config.dataset, seed: snapshot.config.seed, paramCount: durable.paramCount };
}

export function nodeSnapshot(state: EngineState, nodeId: number): NodeSnapshot | null {
  const node = state.pool.get(nodeId);
  if (!node) return null;
  const credits = state.session ? state.durable.credits.get(state.session.id) : undefined;
  return toSnapshot(node, credits?.get(nodeId) ?? NO_CREDIT);
}

export function nodeSnapshots(state: EngineState): NodeSnapshot[] {
  const credits = state.session ? state.durable.credits.get(state.session.id) : undefined;
  return [...state.pool.values()].map((n) => toSnapshot(n, credits?.get(n.id) ?? NO_CREDIT)).sort((a, b) => a.id - b.id);
}

export function statusOf(state: EngineState, now: number): StatusSnapshot {
  const session = sessionSnapshot(state);
  let active = 0;
  let training = 0;
  let failed = 0;
  for (const n of state.pool.values()) {
    if (n.status === 'idle' || n.status === 'training') active++;
    if (n.status === 'training') training++;
    if (n.status === 'failed') failed++;
  }
  return {
    state: session?.state ?? 'idle',
    sessionId: session?.id ?? null,
    round: session?.round ?? 0,
    modelVersion: session?.modelVersion ?? 0,
    nodes: { total: state.pool.size, active, training, failed },
    session,
    startedAt: state.startedAt,
    now,
  };
}
