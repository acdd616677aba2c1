// The operator's kick and ban in the pure engine: the node is disconnected at once, gets no work (so no credit)
// for the rest of the session even when it reconnects, and a ban refuses it until its end; unknown nodes are a
// NOT_FOUND reply.
import { describe, expect, it } from 'vitest';
import { CLOSE_CODES } from '../../src/protocol/messages';
import { isBanned } from '../../src/server/core/engine/node-pool';
import { nodeSnapshot } from '../../src/server/core/engine/views';
import { EngineDriver } from '../support/engine-driver';

function kick(d: EngineDriver, nodeId: number, banMs: number | null = null) {
  const requestId = 900 + nodeId;
  d.send({ type: 'kick', at: d.now, requestId, nodeId, banMs, reason: 'test' });
  return (d as unknown as { replies: Map<number, unknown> }).replies.get(requestId);
}

describe('kick', () => {
  it('disconnects the node and gives it no further work in the session, even after it reconnects', () => {
    const d = new EngineDriver();
    expect(d.start()).toMatchObject({ ok: true });
    d.join(1);
    d.join(2);
    d.deliver(1);
    const connection = d.connectionOf(2);
    expect(kick(d, 2)).toMatchObject({ ok: true });
    expect(d.of('close').at(-1)).toMatchObject({ nodeId: 2, connection, code: CLOSE_CODES.banned, reason: expect.stringMatching(/kicked by the operator/) });
    expect(nodeSnapshot(d.state, 2)).toMatchObject({ status: 'failed', statusReason: expect.stringMatching(/kicked/) });

    // It comes back on a new connection: registered, never ready in this session, so never assigned.
    const lastAssigned = d.assignment(2)?.round;
    d.join(2);
    for (let i = 0; i < 4; i++) d.deliver(1);
    expect(d.assignment(2)?.round).toBe(lastAssigned); // nothing new since the kick
    expect(d.state.pool.get(2)!.readySession).toBeNull();
    const credited = nodeSnapshot(d.state, 2)!.acceptedContributions;
    d.deliver(1);
    expect(nodeSnapshot(d.state, 2)!.acceptedContributions).toBe(credited);
    expect(nodeSnapshot(d.state, 1)!.acceptedContributions).toBeGreaterThanOrEqual(5);
  });

  it('with a ban, refuses the node until the ban ends; an unknown node is NOT_FOUND', () => {
    const d = new EngineDriver();
    d.start();
    d.join(3);
    expect(kick(d, 3, 60_000)).toMatchObject({ ok: true });
    expect(isBanned(d.state.pool, 3, d.now)).toBe(d.now + 60_000);
    expect(isBanned(d.state.pool, 3, d.now + 60_001)).toBeNull();
    expect(kick(d, 77)).toMatchObject({ ok: false, code: 'NOT_FOUND' });
  });
});
