// Replay: for random event sequences, folding the committed events (what the outbox holds) from an empty
// state gives exactly the durable state of the live engine. This is what a standby coordinator, or any
// consumer that rebuilds from the outbox, relies on: nothing durable changes except through a committed event.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evolveAll, EMPTY_DURABLE } from '../../src/server/core/engine/committed';
import { sessionSnapshot } from '../../src/server/core/engine/views';
import { EngineDriver } from '../support/engine-driver';

type Action =
  | { kind: 'join' | 'ready' | 'deliver' | 'lose' | 'leave' | 'heartbeat'; node: number }
  | { kind: 'forge'; node: number; field: 'round' | 'modelVersion' | 'sampleCount' | 'nodeId' }
  | { kind: 'advance'; ms: number }
  | { kind: 'start' | 'pause' | 'resume' | 'stop' | 'hold' | 'release' | 'fail-commit' | 'fail-aggregation' }
  | { kind: 'accuracy'; value: number };

const node = fc.integer({ min: 1, max: 4 });
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constantFrom('join' as const, 'ready' as const, 'lose' as const, 'leave' as const, 'heartbeat' as const), node }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('deliver' as const), node }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('forge' as const), node, field: fc.constantFrom('round' as const, 'modelVersion' as const, 'sampleCount' as const, 'nodeId' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 10, max: 6000 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom('start' as const, 'pause' as const, 'resume' as const, 'stop' as const, 'hold' as const, 'release' as const, 'fail-commit' as const, 'fail-aggregation' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('accuracy' as const), value: fc.double({ min: 0, max: 1, noNaN: true }) }) },
);

function apply(d: EngineDriver, a: Action, joined: Set<number>): void {
  switch (a.kind) {
    case 'join':
      d.join(a.node);
      joined.add(a.node);
      return;
    case 'ready':
      if (joined.has(a.node) && d.state.session) d.ready(a.node);
      return;
    case 'heartbeat':
      if (joined.has(a.node)) d.heartbeat(a.node);
      return;
    case 'lose':
    case 'leave':
      if (joined.has(a.node)) d.lose(a.node, a.kind === 'leave' ? 'agent said goodbye' : 'connection closed', a.kind === 'leave');
      return;
    case 'deliver':
      if (joined.has(a.node) && d.assignment(a.node)) d.deliver(a.node);
      return;
    case 'forge': {
      const assignment = joined.has(a.node) ? d.assignment(a.node) : undefined;
      if (!assignment) return;
      const value = { round: assignment.round + 1, modelVersion: assignment.modelVersion + 3, sampleCount: assignment.shardCount + 1, nodeId: a.node + 10 }[a.field];
      d.deliver(a.node, { [a.field]: value });
      return;
    }
    case 'advance':
      d.advance(a.ms);
      return;
    case 'start':
      d.start({ targetAccuracy: 0.9, evalEvery: 3, maxRounds: 40, minCompletion: 0.5, roundTimeoutMs: 3000 });
      return;
    case 'pause':
    case 'resume':
    case 'stop':
      d.request(a.kind);
      return;
    case 'hold':
      d.hold.add('aggregate');
      d.hold.add('commit-round');
      return;
    case 'release':
      d.hold.clear();
      d.release();
      return;
    case 'fail-commit':
    case 'fail-aggregation': {
      const type = a.kind === 'fail-commit' ? 'commit-round' : 'aggregate';
      const held = d.held.find((e) => e.type === type);
      if (!held || (held.type !== 'commit-round' && held.type !== 'aggregate')) return;
      d.held.splice(d.held.indexOf(held), 1);
      const message = 'injected failure';
      d.send(
        held.type === 'commit-round'
          ? { type: 'commit-failed', at: d.now, sessionId: held.sessionId, round: held.round, message }
          : { type: 'aggregation-failed', at: d.now, sessionId: held.sessionId, round: held.round, message },
      );
      return;
    }
    case 'accuracy':
      d.accuracy = () => a.value;
      return;
  }
}

describe('engine replay', () => {
  it('folding the committed events from an empty state gives the live engine’s durable state', () => {
    fc.assert(
      fc.property(fc.array(action, { minLength: 1, maxLength: 80 }), (actions) => {
        const d = new EngineDriver({ heartbeatTimeoutMs: 2500 });
        d.start({ targetAccuracy: 0.9, evalEvery: 3, maxRounds: 40, minCompletion: 0.5, roundTimeoutMs: 3000 });
        const joined = new Set<number>();
        for (const a of actions) {
          apply(d, a, joined);
          expect(evolveAll(EMPTY_DURABLE, d.committed)).toEqual(d.state.durable);
        }
        // And the ledger agrees with itself: the round counter is the number of committed rounds, the model
        // version the number of applied ones, the samples the sum over them.
        const rounds = d.committed.filter((e) => e.kind === 'round-committed');
        const session = sessionSnapshot(d.state);
        if (session) {
          const own = rounds.filter((r) => r.sessionId === session.id);
          expect(session.round).toBe(own.length);
          expect(session.modelVersion).toBe(own.filter((r) => r.applied).length);
          expect(session.totalSamples).toBe(own.reduce((sum, r) => sum + r.samples, 0));
        }
        // Slots never leak: whatever is not in a collecting round was released.
        const collecting = d.state.round && d.state.round.stage !== 'committing' ? d.state.round.open.accepted.size : 0;
        expect(d.liveSlots.size).toBe(collecting);
      }),
      { numRuns: 150 },
    );
  });
});
