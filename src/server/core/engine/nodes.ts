// Agents coming and going: registration, readiness, heartbeats, loss, and the sweep that fails silent nodes.
import type { EngineEvent } from './events';
import { registerNode, silentNodes, updateNode } from './node-pool';
import { closeConnection, dropFromRound, flushRejections, maybeOpenRound, onNodeLost } from './rounds';

export { onNodeLost };
import type { Transition } from './transition';
import { sessionDescriptor } from './views';

export function onNodeRegistered(t: Transition, e: Extract<EngineEvent, { type: 'node-registered' }>): void {
  const existing = t.state.pool.get(e.nodeId);
  if (existing && existing.connection !== null && existing.connection !== e.connection) {
    // The same agent name connected again (the newest connection wins): the old one is closed and its work dropped.
    closeConnection(t, e.nodeId, existing.connection, 'replaced', `node ${e.name} connected again from another socket`);
    dropFromRound(t, e.nodeId, 'replaced by a newer connection');
  }
  const { pool, previous } = registerNode(t.state.pool, { id: e.nodeId, name: e.name, capabilities: e.capabilities, connection: e.connection, at: e.at });
  t.set({ pool });
  t.emit({
    type: 'send',
    nodeId: e.nodeId,
    message: { v: 1, type: 'welcome', nodeId: e.nodeId, heartbeatMs: t.state.options.heartbeatMs, session: sessionDescriptor(t.state), ...(e.issuedToken ? { token: e.issuedToken } : {}) },
  });
  const verb = previous ? 'reconnected' : 'joined';
  t.log('info', `node ${e.name} (#${e.nodeId}) ${verb}: ${e.capabilities.backend} on ${e.capabilities.device}, ${Math.round(e.capabilities.samplesPerSecond)} samples/s measured`);
  t.timeline(previous ? 'node-rejoined' : 'node-joined', `${e.name} ${previous ? 'rejoined' : 'joined'} (${e.capabilities.backend})`, e.nodeId);
  t.publishNode(e.nodeId);
}

export function onNodeReady(t: Transition, e: Extract<EngineEvent, { type: 'node-ready' }>): void {
  const node = t.state.pool.get(e.nodeId);
  if (!node || node.connection !== e.connection || sessionDescriptor(t.state)?.sessionId !== e.sessionId) return;
  t.set({ pool: updateNode(t.state.pool, e.nodeId, (n) => ({ ...n, readySession: e.sessionId })) });
  maybeOpenRound(t);
}

export function onHeartbeat(t: Transition, e: Extract<EngineEvent, { type: 'heartbeat' }>): void {
  const node = t.state.pool.get(e.nodeId);
  if (!node || node.connection !== e.connection) return;
  t.set({ pool: updateNode(t.state.pool, e.nodeId, (n) => ({ ...n, lastHeartbeatAt: e.at })) });
}

/** A node that stays silent past the timeout is failed even though its socket never closed. */
export function onSweep(t: Transition): void {
  const timeoutMs = t.state.options.heartbeatTimeoutMs;
  for (const { id, silentForMs } of silentNodes(t.state.pool, t.at, timeoutMs)) {
    const connection = t.state.pool.get(id)!.connection!;
    const reason = `no heartbeat for ${silentForMs} ms (timeout ${timeoutMs} ms)`;
    onNodeLost(t, { nodeId: id, connection, reason, left: false });
    closeConnection(t, id, connection, 'heartbeatTimeout', reason);
  }
  // Rejections are written at round close; while no round closes (paused, idle), within a second.
  const since = t.state.session?.rejectionsSince;
  if (since !== null && since !== undefined && t.at - since >= 1000) flushRejections(t);
  if (!t.state.shuttingDown) t.emit({ type: 'set-timer', timer: 'sweep', delayMs: sweepIntervalMs(timeoutMs), round: null });
}

/** Sweep often enough that a silent node is failed within a tenth of the timeout after it expires. */
export function sweepIntervalMs(timeoutMs: number): number {
  return Math.max(20, Math.floor(timeoutMs / 10));
}
