// What the operator does to nodes: kick (disconnect; no further work, so no further credit, in this session; an
// update already delivered to the open round stays in it)
// and ban (kick, and refuse its hello until a time). The ban reuses the pool's offender ban, which the agent
// channel checks at every hello; neither survives a coordinator restart (they live in the engine's state).
import { sessionSnapshot } from './views';
import type { EngineEvent } from './events';
import { updateNode } from './node-pool';
import { closeConnection, onNodeLost } from './rounds';
import type { Transition } from './transition';

export function onKick(t: Transition, e: Extract<EngineEvent, { type: 'kick' }>): void {
  const node = t.state.pool.get(e.nodeId);
  if (!node) {
    t.emit({ type: 'reply', requestId: e.requestId, reply: { ok: false, code: 'NOT_FOUND', message: `node ${e.nodeId} is not known to this coordinator` } });
    return;
  }
  const sessionId = t.state.session?.id;
  const banned = e.banMs !== null ? t.at + e.banMs : null;
  t.set({
    pool: updateNode(t.state.pool, e.nodeId, (n) => ({
      ...n,
      readySession: null,
      ...(sessionId !== undefined ? { kickedFromSession: sessionId } : {}),
      ...(banned !== null ? { bannedUntil: Math.max(n.bannedUntil, banned) } : {}),
    })),
  });
  const why = banned !== null ? `banned by the operator until ${new Date(banned).toISOString()}: ${e.reason}` : `kicked by the operator: ${e.reason}`;
  if (node.connection !== null) {
    onNodeLost(t, { nodeId: e.nodeId, connection: node.connection, reason: why, left: false });
    closeConnection(t, e.nodeId, node.connection, 'banned', why);
  } else {
    t.log('warn', `node ${node.name} (#${e.nodeId}) ${why}`);
    t.publishNode(e.nodeId);
  }
  t.emit({ type: 'reply', requestId: e.requestId, reply: { ok: true, session: sessionSnapshot(t.state) } });
}
