// Overlap (one-round lookahead of the data) in the pure engine: each node is reserved its next shard when a round
// opens, keeps it as its assignment when the next round opens, gives it back when it is not in that round, and no
// sample is ever credited twice or skipped. The only fake is the clock.
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../src/server/core/engine/effects';
import { closedEpochOf } from '../../src/server/core/engine/accounting';
import { durableCursor, reserveNext, settleReservations } from '../../src/server/core/engine/lookahead';
import { resolveSessionConfig } from '../../src/server/core/session-config';
import { freshCursor } from '../../src/server/core/shards';
import { sessionSnapshot } from '../../src/server/core/engine/views';
import { EngineDriver } from '../support/engine-driver';

const TRAIN = 1000;
/** H = 2 inner steps of 50: 100 samples per node and round. */
const OVERLAP = { localSteps: 2, batchSize: 50, overlap: true } as const;

function running(config: Parameters<EngineDriver['start']>[0] = OVERLAP) {
  const d = new EngineDriver();
  expect(d.start(config, TRAIN)).toMatchObject({ ok: true });
  return d;
}

/** Every applied contribution's samples as (epoch, index) keys, counted: a count above 1 is a double credit. */
function credited(d: EngineDriver): Map<string, number> {
  const seen = new Map<string, number>();
  for (const c of d.of('commit-round').flatMap((e) => e.contributions)) {
    if (c.status !== 'applied') continue;
    for (let i = c.shardStart; i < c.shardStart + c.shardCount; i++) seen.set(`${c.epoch}:${i}`, (seen.get(`${c.epoch}:${i}`) ?? 0) + 1);
  }
  return seen;
}

function commits(d: EngineDriver): Extract<Effect, { type: 'commit-round' }>[] {
  return d.of('commit-round');
}

describe('overlap: reservations in the engine', () => {
  it('hands each node its next shard with its assignment, and that shard is its next assignment', () => {
    const d = running();
    d.join(1);
    const a1 = d.assignment(1)!;
    expect(a1).toMatchObject({ round: 1, shardStart: 0, shardCount: 100, localSteps: 2, batchSize: 50, next: { epoch: 0, shardStart: 100, shardCount: 100 } });
    d.deliver(1);
    const a2 = d.assignment(1)!;
    expect(a2).toMatchObject({ round: 2, modelVersion: 1, epoch: 0, shardStart: 100, shardCount: 100, next: { epoch: 0, shardStart: 200, shardCount: 100 } });
    // A new opening: its own attempt number, as for any round.
    expect(a2.attempt).not.toBe(a1.attempt);
  });

  it('measures a node that kept its reservation from its last delivery, when it began that shard', () => {
    const d = running();
    d.join(1);
    d.advance(100);
    d.hold.add('commit-round');
    d.deliver(1); // round 1: 100 samples in 100 ms
    d.advance(40); // the commit takes 40 ms; the node trains its reserved shard meanwhile
    d.hold.clear();
    d.release('commit-round'); // round 2 opens
    d.advance(60);
    d.deliver(1); // 60 ms after the open, 100 ms after it began
    // 1,000 samples/s both times, not 1,667 for round 2 (the head start is not free speed). Smoothed from the
    // calibrated 100: 0.7 x 100 + 0.3 x 1000 = 370, then 0.7 x 370 + 0.3 x 1000 = 559 (from the open: 759).
    expect(d.state.pool.get(1)!.samplesPerSecond).toBeCloseTo(559, 0);
  });

  it('a session without overlap sends no reservation; overlap without local steps is refused', () => {
    const d = running({ localSteps: 2, batchSize: 50 });
    d.join(1);
    expect(d.assignment(1)!.next).toBeUndefined();
    expect(d.state.session!.reserved?.size ?? 0).toBe(0);
    expect(() => resolveSessionConfig({ overlap: true })).toThrow(/overlap needs local steps/);
    expect(() => resolveSessionConfig({ overlap: true, localSteps: 1 })).toThrow(/overlap needs local steps/);
    expect(resolveSessionConfig({ overlap: true, localSteps: 'auto' }).overlap).toBe(true);
  });

  it('a lone node over two epochs: every sample credited exactly once, and an epoch closes only when its reserved samples are in', () => {
    const d = running();
    d.join(1);
    for (let r = 0; r < 25; r++) d.deliver(1);
    const seen = credited(d);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(seen.size).toBe(2500);
    for (let i = 0; i < TRAIN; i++) expect(seen.get(`0:${i}`)).toBe(1);
    expect(sessionSnapshot(d.state)).toMatchObject({ round: 25, totalSamples: 2500 });
    // Round 9 applied [800, 900) while [900, 1000) was reserved: epoch 0 is not closed until round 10 applies it.
    const closed = commits(d).flatMap((c) => c.events.filter((e) => e.kind === 'epoch-closed').map((e) => [e.epoch, c.round]));
    expect(closed).toEqual([
      [0, 10],
      [1, 20],
    ]);
    // What each commit records counts the reservation as not handed out: a restart from it hands the shard out again.
    const round9 = commits(d).find((c) => c.round === 9)!.summary.cursor;
    expect(round9.pending).toEqual([{ epoch: 0, start: 900, count: 100 }]);
    expect(closedEpochOf(round9, TRAIN)).toBe(-1);
  });

  it('a node that fails gives back its round shard and its reservation; the survivor trains both, nothing twice', () => {
    const d = running();
    d.join(1);
    d.deliver(1); // round 1: node 1 alone ([0,100)); reserved [100,200)
    d.join(2); // joins during round 2
    d.deliver(1); // round 2: node 1 ([100,200)); round 3 opens for both
    const r3 = [d.assignment(1)!, d.assignment(2)!];
    expect(r3.map((a) => a.round)).toEqual([3, 3]);
    expect(r3[0]).toMatchObject({ shardStart: 200, next: { shardStart: 400 } }); // kept its reservation
    expect(r3[1]).toMatchObject({ shardStart: 300, next: { shardStart: 500 } }); // fresh work, then a reservation
    d.lose(2); // node 2 fails holding [300,400) and the reservation [500,600)
    d.deliver(1); // round 3 closes with node 1: [300,400) goes back at once
    const r4 = d.assignment(1)!;
    // Node 1 keeps [400,500); the next open gave node 2's reservation back, and node 1 is reserved the oldest
    // returned shard first.
    expect(r4).toMatchObject({ round: 4, shardStart: 400, next: { shardStart: 300, shardCount: 100 } });
    expect(d.state.session!.cursor.pending).toEqual([{ epoch: 0, start: 500, count: 100 }]);
    for (let r = 0; r < 10; r++) d.deliver(1);
    const seen = credited(d);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    for (let i = 0; i < TRAIN; i++) expect(seen.get(`0:${i}`), `sample ${i} of epoch 0`).toBe(1);
    expect(d.of('record-rejection')).toHaveLength(0);
  });

  it('an update for the reserved shard before its round opens is refused and credits nothing', () => {
    const d = running();
    d.join(1);
    const a1 = d.assignment(1)!;
    // Forged: round 2 on the reserved shard while round 1 is open.
    d.deliver(1, { round: 2, shardStart: a1.next!.shardStart, sampleCount: a1.next!.shardCount });
    expect(d.lastSent(1, 'rejected')).toMatchObject({ round: 2, code: 'FUTURE_ROUND' });
    d.deliver(1); // round 1 itself
    d.deliver(1); // round 2 (the reserved shard), delivered once
    d.deliver(1, { round: 2 }); // and again: round 2 is closed now
    expect(d.lastSent(1, 'rejected')).toMatchObject({ round: 2, code: 'STALE_ROUND' });
    const seen = credited(d);
    expect(seen.size).toBe(200);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
  });

  it('a cancelled round gives its shards and every reservation back; the reopened round hands them out once', () => {
    const d = running();
    d.join(1);
    d.hold.add('aggregate');
    d.deliver(1); // round 1 collected; its aggregation is held
    const held = d.held.splice(0)[0];
    d.hold.clear();
    if (held.type !== 'aggregate') throw new Error('expected the aggregation to be held');
    d.send({ type: 'aggregation-failed', at: d.now, sessionId: held.sessionId, round: held.round, message: 'worker crashed' });
    // Reopened: round 1's shard again (returned first), and the old reservation reserved again.
    expect(d.assignment(1)).toMatchObject({ round: 1, shardStart: 0, next: { shardStart: 100 } });
    expect(d.state.session!.cursor).toMatchObject({ epoch: 0, position: 200, pending: [] });
    for (let r = 0; r < 10; r++) d.deliver(1);
    const seen = credited(d);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(seen.size).toBe(TRAIN);
  });
});

describe('overlap: reservation arithmetic', () => {
  it('keeps a reservation only for a node in the round asked for the size it was reserved at; returns the rest oldest first', () => {
    // Sized per node: the smallest request is served first (takeShards), so node 3's 50 come first.
    const taken = reserveNext(freshCursor(), [1, 2, 3], [100, 100, 50], TRAIN);
    expect([...taken.reserved.values()].map((r) => r.shard.start)).toEqual([50, 150, 0]);
    // Node 1 asked for another size now (work sized to speed moved), node 2 is out, node 3 keeps its shard.
    const settled = settleReservations(taken.cursor, taken.reserved, [1, 3], [120, 50]);
    expect([...settled.kept.entries()]).toEqual([[3, { epoch: 0, start: 0, count: 50 }]]);
    expect(settled.cursor.pending).toEqual([
      { epoch: 0, start: 50, count: 100 },
      { epoch: 0, start: 150, count: 100 },
    ]);
    expect(durableCursor(taken.cursor, taken.reserved).pending.map((s) => s.start)).toEqual([0, 50, 150]);
  });
});
