// Agents coming and going: registration, readiness, heartbeats, loss, and the sweep that fails silent nodes.
import type { EngineEvent } from './events';
import { forgiveStall, heard, measuredLink, registerNode, silentNodes, updateNode } from './node-pool';
import { maybeOpenRound } from './open-round';
import { closeConnection, dropFromRound, flushClips, flushRejections, onNodeLost } from './rounds';

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
  const { pool, previous } = registerNode(t.state.pool, { id: e.nodeId, name: e.name, capabilities: e.capabilities, connection: e.connection, at: e.at, heartbeatMs: t.state.options.heartbeatMs });
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
  if (node.kickedFromSession === e.sessionId) return; // kicked: connected, never ready in this session
  t.set({ pool: updateNode(t.state.pool, e.nodeId, (n) => ({ ...n, readySession: e.sessionId })) });
  maybeOpenRound(t);
}

export function onHeartbeat(t: Transition, e: Extract<EngineEvent, { type: 'heartbeat' }>): void {
  const node = t.state.pool.get(e.nodeId);
  if (!node || node.connection !== e.connection) return;
  const share = e.computeShare;
  t.set({ pool: updateNode(t.state.pool, e.nodeId, (n) => (share === undefined ? heard(n, e.at) : { ...heard(n, e.at), computeShare: share })) });
}

/** A link measurement: kept in the pool for the node table and the API (the frame or pong was already heard). */
export function onLinkMeasured(t: Transition, e: Extract<EngineEvent, { type: 'link-measured' }>): void {
  const node = t.state.pool.get(e.nodeId);
  if (!node || node.connection !== e.connection) return;
  t.set({ pool: updateNode(t.state.pool, e.nodeId, (n) => measuredLink(n, e)) });
  t.publishNode(e.nodeId);
}

/**
 * A node that stays silent longer than its own rhythm makes believable is failed, even though its socket
 * never closed. A sweep that fires late means the coordinator itself was stalled (a long synchronous task,
 * a GC pause, an overloaded machine): the stall is not counted against the nodes, whose messages are queued
 * in sockets behind it.
 */
export function onSweep(t: Transition, e: { round: number | null; dueAt?: number }): void {
  const { heartbeatTimeoutMs, heartbeatMs } = t.state.options;
  const interval = sweepIntervalMs(heartbeatTimeoutMs);
  const dueAt = t.state.sweepDueAt;
  const lag = dueAt === null ? 0 : t.at - dueAt;
  if (lag > Math.max(100, 2 * interval)) {
    t.set({ pool: forgiveStall(t.state.pool, lag) });
    // Said only when it mattered: with no node connected (start-up, loading the dashboard) nobody was blamed.
    if ([...t.state.pool.values()].some((n) => n.connection !== null)) {
      t.log('warn', `the coordinator was stalled for ${lag} ms (its heartbeat sweep ran late); that silence is not counted against any node`);
    }
  }
  const policy = { floorMs: heartbeatTimeoutMs, ceilingMs: Math.max(5 * heartbeatTimeoutMs, 20 * heartbeatMs), phiThreshold: 8 };
  for (const { id, silentForMs } of silentNodes(t.state.pool, t.at, policy)) {
    const connection = t.state.pool.get(id)!.connection!;
    const stats = t.state.pool.get(id)!.heartbeats;
    const reason = `no message for ${silentForMs} ms (its messages came every ${Math.round(stats.meanMs)} ± ${Math.round(Math.sqrt(stats.varianceMs2))} ms; timeout ${heartbeatTimeoutMs} ms)`;
    onNodeLost(t, { nodeId: id, connection, reason, left: false });
    closeConnection(t, id, connection, 'heartbeatTimeout', reason);
  }
  // Rejections are written at round close; while no round closes (paused, idle), within a second.
  const since = t.state.session?.rejectionsSince;
  if (since !== null && since !== undefined && t.at - since >= 1000) flushRejections(t);
  // Clips are summed up once a minute, whether or not another one comes.
  flushClips(t, true);
  if (!t.state.shuttingDown) armSweep(t);
}

export function armSweep(t: Transition): void {
  const delayMs = sweepIntervalMs(t.state.options.heartbeatTimeoutMs);
  t.set({ sweepDueAt: t.at + delayMs });
  t.emit({ type: 'set-timer', timer: 'sweep', delayMs, round: null });
}

/** Sweep often enough that a silent node is failed within a tenth of the timeout after it expires. */
export function sweepIntervalMs(timeoutMs: number): number {
  return Math.max(20, Math.floor(timeoutMs / 10));
}
