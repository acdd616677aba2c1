// The round engine as a pure function: events in, state and effects out. The only fake is the clock.
import { describe, expect, it } from 'vitest';
import { CLOSE_CODES } from '../../src/protocol/messages';
import { FrameKind } from '../../src/protocol/frame';
import { evolveAll, EMPTY_DURABLE } from '../../src/server/core/engine/committed';
import { sessionSnapshot, statusOf, nodeSnapshot } from '../../src/server/core/engine/views';
import { robustPlan } from '../../src/server/core/engine/strategy';
import { EngineDriver } from '../support/engine-driver';

function running(options: ConstructorParameters<typeof EngineDriver>[0] = {}, config: Parameters<EngineDriver['start']>[0] = {}) {
  const d = new EngineDriver(options);
  const reply = d.start(config);
  expect(reply).toMatchObject({ ok: true });
  return d;
}

function rejections(d: EngineDriver): string[] {
  return d.of('record-rejection').map((e) => e.record.reason!.split(':')[0]);
}

describe('round engine: rounds', () => {
  it('assigns every ready node, aggregates the sample-weighted mean when all reported, commits, then applies', () => {
    const d = running();
    d.join(1);
    const a1 = d.assignment(1)!;
    expect(a1).toMatchObject({ round: 1, modelVersion: 0, shardStart: 0, shardCount: 100 });
    expect(a1.attempt).toBeGreaterThan(0);
    expect(d.of('send-model').at(-1)).toMatchObject({ nodeIds: [1], round: 1, modelVersion: 0 });
    d.join(2); // joins during round 1: works from round 2
    const from = d.effects.length;
    d.deliver(1);
    const effects = d.effects.slice(from).map((e) => e.type);
    // The order is what makes application exactly-once: aggregate -> commit -> apply, then the next round.
    expect(effects.indexOf('aggregate')).toBeLessThan(effects.indexOf('commit-round'));
    expect(effects.indexOf('commit-round')).toBeLessThan(effects.indexOf('apply-update'));
    expect(effects.indexOf('apply-update')).toBeLessThan(effects.lastIndexOf('send-model'));
    expect(d.of('aggregate', from)[0].plan.plan).toEqual({ rule: 'weighted-mean', weights: [100] });
    expect(sessionSnapshot(d.state)).toMatchObject({ round: 1, modelVersion: 1, totalSamples: 100 });

    const r2 = [d.assignment(1)!, d.assignment(2)!];
    expect(r2.map((a) => a.round)).toEqual([2, 2]);
    expect(new Set(r2.map((a) => a.shardStart))).toEqual(new Set([100, 200]));
    d.deliver(1);
    expect(sessionSnapshot(d.state)!.round).toBe(1); // still waiting for node 2
    d.deliver(2);
    expect(sessionSnapshot(d.state)).toMatchObject({ round: 2, modelVersion: 2, totalSamples: 300 });
    const commit = d.of('commit-round').at(-1)!;
    expect(commit.contributions.map((c) => [c.nodeId, c.status, c.samples])).toEqual([
      [1, 'applied', 100],
      [2, 'applied', 100],
    ]);
    expect(commit.journal).toEqual({ modelVersion: 2, samples: 200 });
    expect(d.liveSlots.size).toBe(0); // every slot of rounds 1 and 2 went back once aggregated
    expect(nodeSnapshot(d.state, 1)).toMatchObject({ acceptedContributions: 2, acceptedSamples: 200 });
  });

  it('cuts off a straggler once a quorum has delivered, hands its shard out again, and benches it after three misses', () => {
    const d = running({}, { minCompletion: 0.5 });
    d.join(1); // round 1 opens for node 1 alone
    d.join(2);
    d.join(3);
    d.deliver(1);
    for (let round = 2; round <= 4; round++) {
      const slow = d.assignment(3)!;
      expect(slow.round).toBe(round);
      d.advance(100);
      d.deliver(1);
      d.deliver(2);
      // grace = time the quorum took (100 ms), at least 250 ms
      d.advance(260);
      expect(sessionSnapshot(d.state)!.round).toBe(round);
      expect(d.lastSent(3, 'cancel')).toMatchObject({ round });
      // The shard comes back first in the next round.
      const next = [d.assignment(1)!, d.assignment(2)!, d.assignment(3)!].filter((a) => a.round === round + 1);
      expect(next.map((a) => a.shardStart)).toContain(slow.shardStart);
    }
    // Third miss in a row: benched for 4 rounds.
    const benched = d.of('timeline').find((e) => e.event.kind === 'node-benched');
    expect(benched?.event.nodeId).toBe(3);
    expect(d.assignment(3)!.round).toBe(4);
    d.deliver(1);
    d.deliver(2);
    expect(d.assignment(1)!.round).toBe(6);
    expect(nodeSnapshot(d.state, 3)!.statusReason).toContain('benched for 4 rounds');
    expect(d.assignment(3)!.round).toBe(4); // not assigned while benched
  });

  it('a minority that answers instantly cannot shrink the straggler grace below when updates usually arrive', () => {
    const d = running({}, { minCompletion: 0.5 });
    for (const id of [1, 2, 3, 4, 5]) d.join(id);
    d.deliver(1); // round 1: node 1 alone
    // Rounds with everyone honest: updates arrive after about 600 ms.
    for (let r = 0; r < 4; r++) {
      d.advance(600);
      for (const id of [1, 2, 3, 4, 5]) d.deliver(id);
    }
    // Now nodes 1 and 2 answer at once; the three honest ones still need 600 ms.
    for (let r = 0; r < 4; r++) {
      d.advance(1);
      d.deliver(1);
      d.deliver(2);
      d.deliver(3); // the quorum (3 of 5) is in after 1 ms...
      d.advance(599);
      d.deliver(4);
      d.deliver(5); // ...and the honest stragglers still make it: the cut-off waited for the usual arrival time
    }
    expect(d.of('commit-round').slice(-4).every((c) => c.summary.updates === 5)).toBe(true);
    expect(d.of('timeline').some((e) => e.event.kind === 'node-benched')).toBe(false);
  });

  it('closes a round nobody delivers at the hard deadline without applying it, and keeps its shard', () => {
    const d = running({}, { roundTimeoutMs: 2000 });
    d.join(1);
    const a = d.assignment(1)!;
    d.advance(2001);
    const commit = d.of('commit-round').at(-1)!;
    expect(commit.summary).toMatchObject({ round: 1, applied: false, failures: 1, samples: 0 });
    expect(commit.journal).toBeNull();
    expect(d.of('aggregate')).toHaveLength(0);
    expect(sessionSnapshot(d.state)).toMatchObject({ round: 1, modelVersion: 0, totalSamples: 0 });
    expect(d.assignment(1)).toMatchObject({ round: 2, shardStart: a.shardStart });
  });

  it('does not apply a round below quorum and records its updates as rejected, not credited', () => {
    const d = running({}, { minCompletion: 1 });
    d.join(1);
    d.join(2);
    d.deliver(1); // round 1: node 1 alone
    d.deliver(1);
    d.lose(2);
    const commit = d.of('commit-round').at(-1)!;
    expect(commit.summary).toMatchObject({ round: 2, applied: false });
    expect(commit.contributions.map((c) => [c.nodeId, c.status, c.reason?.split(':')[0]])).toEqual([[1, 'rejected', 'QUORUM_NOT_MET']]);
    expect(nodeSnapshot(d.state, 1)).toMatchObject({ acceptedContributions: 1, rejectedContributions: 1, acceptedSamples: 100 });
    // Both shards of round 2 come back.
    expect(d.state.session!.cursor.pending.length).toBeGreaterThan(0);
  });

  it('rejects duplicate, stale, future, foreign, mis-sized, absurd and model frames with reasons, and credits nothing', () => {
    const d = running({}, { maxUpdateNorm: 10 });
    d.join(1);
    d.join(2);
    d.deliver(1); // round 1 had only node 1
    const a1 = d.assignment(1)!;
    // Frames that do not answer node 1's assignment in round 2 leave it assigned.
    d.deliver(1, { round: a1.round + 1 });
    d.deliver(1, { round: a1.round - 1 });
    d.deliver(1, { nodeId: 2 });
    expect(d.assignment(1)!.round).toBe(2);
    // Each of these answers its assignment with a refused update: node 2 delivering completes the round at once.
    for (const refused of [{ kind: FrameKind.Model }, { sampleCount: 7 }, { modelVersion: 0 }, { paramCount: 9 }, 'absurd'] as const) {
      const round = d.assignment(1)!.round;
      if (refused === 'absurd') d.sumSquares = 1e4; // norm 100 > limit 10
      d.deliver(1, refused === 'absurd' ? {} : refused);
      d.sumSquares = 1;
      d.deliver(2);
      expect(sessionSnapshot(d.state)!.round, JSON.stringify(refused)).toBe(round);
    }
    d.deliver(1);
    d.deliver(1); // duplicate
    expect(d.lastSent(1, 'rejected')).toMatchObject({ code: 'DUPLICATE' }); // told at once...
    d.advance(1100);
    expect(rejections(d)).toEqual(['FUTURE_ROUND', 'STALE_ROUND', 'WRONG_NODE', 'BAD_REQUEST', 'BAD_SAMPLE_COUNT', 'STALE_MODEL', 'PARAM_COUNT', 'ABSURD_NORM', 'DUPLICATE']);
    // The last round closed at the straggler cut-off meanwhile, with node 1's accepted update.
    expect(nodeSnapshot(d.state, 1)).toMatchObject({ acceptedContributions: 2, rejectedContributions: 9 });
    // The slot of the absurd update went back at once.
    expect(d.of('release-slots').some((e) => e.slots.length === 1)).toBe(true);
  });

  it('stops waiting for a node whose update it refused: the round closes at once, the shard comes back, and it is no missed round', () => {
    // Agents do not resend a refused update. Before, the round waited for it until the straggler cut-off (late in a
    // soak, 1 round in 9 waited 300-1,000 ms), sent it a cancel, and three refusals benched it as a straggler.
    const d = running({}, { maxUpdateNorm: 10, minCompletion: 0.5 });
    d.join(1);
    d.join(2);
    d.deliver(1); // round 1: node 1 alone
    for (let i = 0; i < 3; i++) {
      const refusedShard = d.assignment(1)!;
      const round = refusedShard.round;
      const sentBefore = d.of('send').length;
      d.sumSquares = 1e4; // norm 100 > the session limit 10
      d.deliver(1);
      d.sumSquares = 1;
      expect(d.lastSent(1, 'rejected')).toMatchObject({ round, code: 'ABSURD_NORM' });
      expect(nodeSnapshot(d.state, 1)).toMatchObject({ status: 'idle' });
      expect(nodeSnapshot(d.state, 1)!.statusReason).toContain(`round ${round} refused (ABSURD_NORM)`);
      // A second frame for the same assignment is refused as answered already, and changes nothing.
      d.deliver(1);
      expect(d.lastSent(1, 'rejected')).toMatchObject({ round, code: 'NOT_ASSIGNED' });
      d.deliver(2); // no clock advance: the round closes on node 2's update, applied with 1 of 2
      expect(sessionSnapshot(d.state)).toMatchObject({ round });
      const commit = d.of('commit-round').at(-1)!;
      expect(commit.summary).toMatchObject({ round, applied: true });
      expect(d.of('send').slice(sentBefore).some((e) => e.nodeId === 1 && e.message.type === 'cancel')).toBe(false);
      // The refused shard is handed out again.
      expect(d.state.session!.cursor.pending.some((s) => s.start === refusedShard.shardStart) || d.assignment(2)!.shardStart === refusedShard.shardStart || d.assignment(1)!.shardStart === refusedShard.shardStart).toBe(true);
    }
    // Three refusals in a row are not three missed rounds: node 1 is not benched, and works in the next round.
    expect(d.of('log').some((e) => /benched/.test(e.message))).toBe(false);
    expect(d.assignment(1)!.round).toBe(sessionSnapshot(d.state)!.round + 1);
  });

  it('clips an update over 10x the median of recently accepted norms, and refuses one far past the recent ones, under the session’s absolute limit', () => {
    const d = running({}, { maxUpdateNorm: 1e5 });
    d.join(1);
    for (let i = 0; i < 8; i++) d.deliver(1); // norm 1 each
    d.sumSquares = 400; // norm 20: within 1e5, 20x the median: accepted, counted as 10
    d.deliver(1);
    expect(d.lastSent(1, 'accepted')).toMatchObject({ round: 9, clippedTo: 10 });
    expect(d.of('aggregate').at(-1)!.plan.scales).toEqual([0.5]);
    expect(d.of('commit-round').at(-1)!.summary).toMatchObject({ round: 9, applied: true });
    // The ledger says so: the row counted at half its length, its samples credited in full.
    expect(d.of('commit-round').at(-1)!.contributions).toEqual([expect.objectContaining({ round: 9, nodeId: 1, status: 'applied', scale: 0.5 })]);
    expect(d.of('commit-round').at(-2)!.contributions[0]).not.toHaveProperty('scale');
    expect(nodeSnapshot(d.state, 1)).toMatchObject({ acceptedContributions: 9, rejectedContributions: 0 });
    expect(d.of('log').filter((e) => /counts clipped to 1\.000e\+1 \(10x the median 1\.000e\+0/.test(e.message))).toHaveLength(1);
    // Norms 1 (x8) and 20: too few for the 90th percentile, so the refusal limit is 100x the median.
    d.sumSquares = 300 * 300;
    d.deliver(1);
    expect(d.lastSent(1, 'rejected')).toMatchObject({ round: 10, code: 'ABSURD_NORM' });
    expect(d.lastSent(1, 'rejected')!.reason).toContain('exceeds the limit 1.000e+2 (100x the median 1.000e+0 of recently accepted updates)');
    // The refused update was node 1's answer: round 10 closed at once without an update (below quorum).
    expect(sessionSnapshot(d.state)!.round).toBe(10);
    expect(d.of('commit-round').at(-1)!.summary).toMatchObject({ round: 10, applied: false });
    d.sumSquares = 25; // norm 5: within both limits, not clipped
    d.deliver(1);
    expect(sessionSnapshot(d.state)!.round).toBe(11);
    expect(d.lastSent(1, 'accepted')).not.toHaveProperty('clippedTo');
    expect(d.of('aggregate').at(-1)!.plan.scales).toBeUndefined();
    // Clips after the first are counted per node and summed up once a minute by the sweep, not logged one by one.
    d.sumSquares = 400;
    d.deliver(1);
    d.deliver(1);
    expect(d.of('log').filter((e) => /counted clipped/.test(e.message))).toHaveLength(0);
    d.advance(61_000);
    expect(d.of('log').filter((e) => /counts clipped/.test(e.message))).toHaveLength(1);
    const summaries = d.of('log').filter((e) => /counted clipped to the relative norm limit/.test(e.message));
    expect(summaries).toHaveLength(1);
    expect(summaries[0].message).toMatch(/^2 updates in the last 6\d s counted clipped to the relative norm limit \(10x the median .*\(node #1: 2\)$/);
    // Nothing clipped since: no empty summary.
    d.advance(61_000);
    expect(d.of('log').filter((e) => /counted clipped to the relative norm limit/.test(e.message))).toHaveLength(1);
  });

  it('has no median to clip to while half the recent norms are zero: only the 90th percentile refuses', () => {
    const d = running({}, { maxUpdateNorm: 100 });
    d.join(1);
    d.sumSquares = 0;
    for (let i = 0; i < 5; i++) d.deliver(1);
    d.sumSquares = 1;
    for (let i = 0; i < 3; i++) d.deliver(1); // norms 0 (x5) and 1 (x3): median 0, 90th percentile 1
    d.sumSquares = 25;
    d.deliver(1);
    expect(d.lastSent(1, 'accepted')).toMatchObject({ round: 9 });
    expect(d.lastSent(1, 'accepted')).not.toHaveProperty('clippedTo');
    const refusedBefore = d.of('send').filter((e) => e.message.type === 'rejected').length;
    // Norms 0 (x5), 1 (x3) and 5: the median is still 0, the 90th percentile 5.
    d.sumSquares = 60 * 60;
    d.deliver(1);
    expect(d.of('send').filter((e) => e.message.type === 'rejected')).toHaveLength(refusedBefore + 1);
    expect(d.lastSent(1, 'rejected')!.reason).toContain('exceeds the limit 5.000e+1 (10x the 90th percentile 5.000e+0 of recently accepted updates)');
  });

  it('refuses only over 10x the 90th percentile once 32 recent norms show a heavy tail (the hard batches late in training)', () => {
    const d = running({}, { maxUpdateNorm: 1e5 });
    d.join(1);
    for (let i = 0; i < 28; i++) d.deliver(1); // norm 1
    d.sumSquares = 50 * 50;
    for (let i = 0; i < 4; i++) d.deliver(1); // norm 50, each clipped to 10: the window keeps 50
    expect(d.state.session!.norms.slice(-4)).toEqual([50, 50, 50, 50]);
    d.sumSquares = 300 * 300; // over 100x the median, under 10x the 90th percentile (500): accepted, clipped
    d.deliver(1);
    expect(d.lastSent(1, 'accepted')).toMatchObject({ round: 33, clippedTo: 10 });
    d.sumSquares = 600 * 600;
    d.deliver(1);
    expect(d.lastSent(1, 'rejected')).toMatchObject({ round: 34, code: 'ABSURD_NORM' });
    expect(d.lastSent(1, 'rejected')!.reason).toContain('exceeds the limit 5.000e+2 (10x the 90th percentile 5.000e+1 of recently accepted updates)');
  });

  it('refuses over 100x the median when the recent norms are close together', () => {
    const d = running({}, { maxUpdateNorm: 1e5 });
    d.join(1);
    for (let i = 0; i < 40; i++) d.deliver(1); // norm 1 each: the 90th percentile is 1 too
    d.sumSquares = 150 * 150;
    d.deliver(1);
    expect(d.lastSent(1, 'rejected')!.reason).toContain('exceeds the limit 1.000e+2 (100x the median 1.000e+0 of recently accepted updates)');
  });

  it('has no relative limit while every recent norm is zero (a median of 0 would clip every update to nothing for good)', () => {
    const d = running({}, { maxUpdateNorm: 100 });
    d.join(1);
    d.sumSquares = 0;
    for (let i = 0; i < 8; i++) d.deliver(1);
    d.sumSquares = 25;
    d.deliver(1);
    expect(d.lastSent(1, 'accepted')).toMatchObject({ round: 9 });
    expect(d.lastSent(1, 'accepted')).not.toHaveProperty('clippedTo');
    // With one norm above 0 in the window, its 90th percentile refuses (no clip: the median is still 0).
    d.sumSquares = 1e6;
    d.deliver(1);
    expect(d.lastSent(1, 'rejected')!.reason).toContain('exceeds the limit 5.000e+1 (10x the 90th percentile 5.000e+0');
  });

  it('refuses a shard against the relative limit once, then holds its next update to the absolute limit only, clipped (no livelock)', () => {
    // Late in training the median norm is small, and a batch with hard samples can honestly go far past it.
    // Refusing that shard every time it comes back stalled a 30-minute soak for good; the second update for it
    // is refused only over the session's absolute limit, and still counts clipped.
    const d = running({}, { maxUpdateNorm: 500 });
    d.join(1);
    for (let i = 0; i < 8; i++) d.deliver(1); // norm 1 each
    const shard = d.assignment(1)!;
    d.sumSquares = 200 * 200; // norm 200: within 500, but 200x the median
    d.deliver(1);
    expect(d.lastSent(1, 'rejected')).toMatchObject({ code: 'ABSURD_NORM' });
    const refusals = () => d.of('send').filter((e) => e.nodeId === 1 && e.message.type === 'rejected').length;
    const refusedBefore = refusals();
    d.deliver(1); // the same shard, the same norm: accepted now, counted as 10
    expect(refusals()).toBe(refusedBefore);
    expect(d.lastSent(1, 'accepted')).toMatchObject({ clippedTo: 10 });
    expect(d.of('aggregate').at(-1)!.plan.scales).toEqual([10 / 200]);
    expect(d.of('log').some((e) => /shard .* refused once against the relative norm limit is accepted at norm 2\.000e\+2/.test(e.message))).toBe(true);
    // It entered the window at the limit it was refused over (100), not at 200: refusing a shard on purpose is no
    // way to push a huge norm into the reference.
    expect(d.state.session!.norms.at(-1)).toBe(100);
    // The waiver went with that update: the next shard is held to the relative limit again (100x the median 1),
    // and no update ever gets past the absolute one.
    const next = d.assignment(1)!;
    expect(`${next.epoch}:${next.shardStart}`).not.toBe(`${shard.epoch}:${shard.shardStart}`);
    d.deliver(1);
    expect(refusals()).toBe(refusedBefore + 1);
    expect(d.lastSent(1, 'rejected')).toMatchObject({ round: next.round, code: 'ABSURD_NORM' });
    expect(d.lastSent(1, 'rejected')!.reason).toContain('exceeds the limit 1.000e+2 (100x the median');
    d.sumSquares = 1e6; // norm 1000 > 500, on the shard just refused: the absolute limit still holds
    d.deliver(1);
    expect(refusals()).toBe(refusedBefore + 2);
    expect(d.lastSent(1, 'rejected')!.reason).toContain('the session limit');
  });

  it('counts a flood of bad frames in one ledger row, and disconnects and bans a node that keeps sending them', () => {
    const d = running();
    d.join(1);
    d.join(2);
    d.deliver(1); // round 1: node 1 alone
    for (let i = 0; i < 60; i++) d.deliver(2, { round: 99 });
    d.deliver(1);
    d.deliver(2); // closes round 2: the tally is written with it
    const rows = d.of('record-rejection');
    expect(rows).toHaveLength(1);
    expect(rows[0].record).toMatchObject({ nodeId: 2, round: 99, count: 60 });
    expect(rows[0].events).toEqual([expect.objectContaining({ kind: 'node-credited', nodeId: 2, status: 'rejected', count: 60 })]);
    expect(d.of('log').filter((l) => l.message.includes('FUTURE_ROUND')).length).toBeLessThanOrEqual(2);
    expect(nodeSnapshot(d.state, 2)).toMatchObject({ rejectedContributions: 60, acceptedContributions: 1 });
    // Past the limit within the window: disconnected and refused.
    for (let i = 0; i < 50; i++) d.deliver(2, { round: 99 });
    expect(d.of('close').at(-1)).toMatchObject({ nodeId: 2, code: CLOSE_CODES.banned });
    expect(d.state.pool.get(2)).toMatchObject({ status: 'failed', connection: null });
    expect(d.state.pool.get(2)!.bannedUntil).toBeGreaterThan(d.now);
    expect(evolveAll(EMPTY_DURABLE, d.committed)).toEqual(d.state.durable);
  });

  it('fails a silent node after the heartbeat timeout, closes its connection and drops it from the round', () => {
    const d = running({ heartbeatTimeoutMs: 1000 });
    d.join(1);
    d.join(2);
    d.deliver(1);
    expect(d.assignment(2)!.round).toBe(2);
    for (let i = 0; i < 11; i++) {
      d.advance(100);
      d.heartbeat(1);
    }
    const close = d.of('close').find((c) => c.nodeId === 2);
    expect(close).toMatchObject({ connection: d.connectionOf(2), code: CLOSE_CODES.heartbeatTimeout });
    expect(nodeSnapshot(d.state, 2)!.status).toBe('failed');
    expect(nodeSnapshot(d.state, 1)!.status).not.toBe('failed');
    // Node 2's shard is back and node 1 carries on alone.
    d.deliver(1);
    expect(sessionSnapshot(d.state)!.round).toBe(2);
  });

  it('ignores the events of a replaced connection, and closes the old one', () => {
    const d = running();
    const first = d.join(1);
    const second = d.join(1);
    expect(d.of('close')[0]).toMatchObject({ nodeId: 1, connection: first, code: CLOSE_CODES.replaced });
    d.send({ type: 'node-lost', at: d.now, nodeId: 1, connection: first, reason: 'old socket closed', left: false });
    expect(d.state.pool.get(1)).toMatchObject({ connection: second, status: 'training' });
  });
});

describe('round engine: aggregation rules', () => {
  it('asks the aggregator for the session’s robust rule, sized to the updates that arrived', () => {
    const median = running({}, { aggregation: { rule: 'median' } });
    for (const id of [1, 2, 3, 4]) median.join(id);
    median.deliver(1); // round 1: one update, too few for a rule: the mean
    expect(median.of('aggregate').at(-1)!.plan.plan).toEqual({ rule: 'weighted-mean', weights: [100] });
    for (const id of [1, 2, 3, 4]) median.deliver(id);
    expect(median.of('aggregate').at(-1)!.plan).toMatchObject({ slots: expect.any(Array), plan: { rule: 'median' } });
    expect(median.of('aggregate').at(-1)!.plan.slots).toHaveLength(4);
  });

  it('trims at least one at each end and never all; Multi-Krum falls back to the median below 2f + 3 updates', () => {
    const updates = (n: number) => Array.from({ length: n }, (_, i) => ({ nodeId: i + 1, slot: i, samples: 10 }));
    expect(robustPlan({ rule: 'trimmed-mean', trimFraction: 0.1 }, updates(5))).toEqual({ rule: 'trimmed-mean', trim: 1 });
    expect(robustPlan({ rule: 'trimmed-mean', trimFraction: 0.2 }, updates(20))).toEqual({ rule: 'trimmed-mean', trim: 4 });
    expect(robustPlan({ rule: 'trimmed-mean', trimFraction: 0.49 }, updates(4))).toEqual({ rule: 'trimmed-mean', trim: 1 });
    expect(robustPlan({ rule: 'multi-krum', byzantine: 1 }, updates(5))).toEqual({ rule: 'multi-krum', f: 1, m: 4 });
    expect(robustPlan({ rule: 'multi-krum', byzantine: 2 }, updates(6))).toEqual({ rule: 'median' });
    expect(robustPlan({ rule: 'median' }, updates(2))).toEqual({ rule: 'weighted-mean', weights: [10, 10] });
  });
});

describe('round engine: failure detection', () => {
  const timeout = { heartbeatMs: 100, heartbeatTimeoutMs: 800 };

  it('learns each node’s rhythm: a regular node that stops is failed just past the floor, a jittery one is given slack', () => {
    const d = running(timeout);
    d.join(1);
    d.join(2);
    // Node 1 heartbeats every 100 ms; node 2 (a loaded machine) every 100 to 750 ms.
    const gaps = [100, 700, 150, 650, 100, 750, 200, 700, 120, 600, 100, 750, 300, 700, 100, 650];
    let next2 = d.now + gaps[0];
    for (let i = 0, g = 0; i < 300; i++) {
      d.advance(50);
      if (i % 2 === 1) d.heartbeat(1);
      if (d.now >= next2) {
        d.heartbeat(2);
        next2 = d.now + gaps[++g % gaps.length];
      }
    }
    // Both fall silent now.
    const silentAt = d.now;
    d.advance(1000);
    const failed1 = d.of('timeline').find((e) => e.event.kind === 'node-failed' && e.event.nodeId === 1)!;
    expect(failed1.event.at - silentAt).toBeGreaterThan(800);
    expect(failed1.event.at - silentAt).toBeLessThan(1000);
    expect(nodeSnapshot(d.state, 2)!.status).not.toBe('failed'); // 1 s of silence is plausible for node 2
    d.advance(4000);
    expect(nodeSnapshot(d.state, 2)!.status).toBe('failed'); // ...but not for ever (ceiling 5 x timeout)
  });

  it('does not blame the nodes for a stall of the coordinator itself', () => {
    const d = running(timeout);
    d.join(1);
    for (let i = 0; i < 10; i++) {
      d.advance(100);
      d.heartbeat(1);
    }
    // The event loop was blocked for 3 s: the sweep fires late, before the queued heartbeats are read.
    const late = d.send({ type: 'timer-fired', at: d.now + 3000, timer: 'sweep', round: null });
    expect(late.some((e) => e.type === 'log' && e.message.includes('stalled'))).toBe(true);
    expect(nodeSnapshot(d.state, 1)!.status).not.toBe('failed');
  });
});

describe('round engine: sessions', () => {
  it('refuses a second start while one runs, and allocates session ids itself', () => {
    const d = running();
    expect(d.start()).toMatchObject({ ok: false, code: 'CONFLICT' });
    d.request('stop');
    expect([...d.replies.values()].at(-1)).toMatchObject({ ok: true, session: { state: 'stopped' } });
    expect(d.start()).toMatchObject({ ok: true, session: { id: 2, state: 'running' } });
  });

  it('pause lets the open round finish and opens no new one until resume', () => {
    const d = running();
    d.join(1);
    expect(d.request('pause')).toMatchObject({ ok: true, session: { state: 'paused' } });
    d.deliver(1);
    expect(sessionSnapshot(d.state)).toMatchObject({ round: 1, state: 'paused' });
    expect(d.state.round).toBeNull();
    expect(d.request('pause')).toMatchObject({ ok: false, code: 'CONFLICT' });
    expect(d.request('resume')).toMatchObject({ ok: true, session: { state: 'running' } });
    expect(d.assignment(1)!.round).toBe(2);
  });

  it('stop while a round commits waits for the commit, then evaluates, checkpoints and saves, in that order', () => {
    const d = running();
    d.join(1);
    d.hold.add('commit-round');
    d.deliver(1);
    expect(d.request('stop')).toBeUndefined();
    const from = d.effects.length;
    d.hold.clear();
    d.release('commit-round');
    const order = d.effects.slice(from).map((e) => e.type).filter((t) => ['apply-update', 'evaluate', 'checkpoint', 'persist-session', 'stop-evaluator'].includes(t));
    expect(order).toEqual(['apply-update', 'evaluate', 'checkpoint', 'persist-session', 'stop-evaluator']);
    expect(sessionSnapshot(d.state)).toMatchObject({ state: 'stopped', round: 1, modelVersion: 1 });
    expect(d.lastSent(1, 'session')).toMatchObject({ session: null });
  });

  it('a stop is persisted even when its final checkpoint fails (the journal still holds every applied update)', () => {
    const d = running();
    d.join(1);
    d.deliver(1);
    d.hold.add('checkpoint');
    expect(d.request('stop')).toBeUndefined();
    const checkpoint = d.of('checkpoint').at(-1)!;
    expect(checkpoint).toMatchObject({ purpose: 'final' });
    d.hold.clear();
    d.send({ type: 'checkpoint-failed', at: d.now, sessionId: checkpoint.sessionId, purpose: 'final', message: 'ENOSPC: no space left on device' });
    expect(sessionSnapshot(d.state)).toMatchObject({ state: 'stopped', round: 1, modelVersion: 1 });
    expect(d.of('persist-session').at(-1)!.session).toMatchObject({ state: 'stopped' });
    expect(d.of('log').some((l) => l.level === 'error' && l.message.includes('ENOSPC'))).toBe(true);
  });

  it('a shutdown leaves the session resumable even when its checkpoint fails', () => {
    const d = running();
    d.join(1);
    d.deliver(1);
    d.hold.add('checkpoint');
    expect(d.request('shutdown')).toBeUndefined();
    const checkpoint = d.of('checkpoint').at(-1)!;
    expect(checkpoint).toMatchObject({ purpose: 'shutdown' });
    d.hold.clear();
    d.send({ type: 'checkpoint-failed', at: d.now, sessionId: checkpoint.sessionId, purpose: 'shutdown', message: 'EIO' });
    const reply = [...d.replies.values()].at(-1)!;
    expect(reply).toMatchObject({ ok: true, session: { state: 'running', round: 1 } });
    expect(d.of('persist-session').at(-1)!.session.message).toContain('resumes on the next start');
  });

  it('stop cancels a round still collecting: its updates are recorded as cancelled and every shard returns', () => {
    const d = running();
    d.join(1);
    d.join(2);
    d.deliver(1); // round 1: node 1 alone
    d.deliver(1); // round 2: node 1 in, node 2 outstanding
    d.request('stop');
    expect(rejections(d)).toEqual(['CANCELLED']);
    expect(d.liveSlots.size).toBe(0);
    expect(d.state.session!.cursor.pending.map((s) => s.start).sort((a, b) => a - b)).toEqual([100, 200]);
  });

  it('completes once the sample budget is applied, after a final evaluation', () => {
    const d = running({}, { maxSamples: 300 });
    d.join(1);
    for (let i = 0; i < 3; i++) d.deliver(1);
    expect(sessionSnapshot(d.state)).toMatchObject({ state: 'completed', totalSamples: 300, lastTestAccuracy: 0.5 });
    expect(d.of('evaluate').at(-1)).toMatchObject({ purpose: 'final' });
  });

  it('completes after a restart when the round that spent the budget committed but the completion did not', () => {
    // The coordinator dies during the ending (its final evaluation held): the durable session is still running,
    // with the budget spent. A restarted engine must complete it, not wait for a round nobody may open.
    const before = running({}, { maxSamples: 300 });
    before.hold.add('evaluate');
    before.join(1);
    for (let i = 0; i < 3; i++) before.deliver(1);
    const durable = before.state.durable.sessions.get(1)!;
    expect(durable).toMatchObject({ state: 'running', totalSamples: 300 });

    const after = new EngineDriver();
    after.join(1);
    after.send({
      type: 'recovered', at: after.now, requestId: 99, session: structuredClone(durable), credits: before.state.durable.credits.get(1)!,
      recent: [...before.state.session!.recent], lastTestAccuracy: null, lastTestLoss: null, how: 'checkpoint at round 3', detail: {},
    });
    expect(sessionSnapshot(after.state)).toMatchObject({ state: 'completed', totalSamples: 300, round: 3 });
    expect(after.of('evaluate').at(-1)).toMatchObject({ purpose: 'final', round: 3 });
    expect(after.of('checkpoint').at(-1)).toMatchObject({ purpose: 'final' });
    expect(after.assignment(1)).toBeUndefined();
  });

  it('completes when the confirming evaluation falls short but the round it waited for was the last one allowed', () => {
    const d = running({}, { targetAccuracy: 0.9, evalEvery: 2, maxRounds: 5 });
    d.accuracy = (purpose, round) => (purpose === 'periodic' && round === 4 ? 0.95 : 0.8);
    d.join(1);
    for (let i = 0; i < 4; i++) d.deliver(1);
    expect(d.state.session!.completionPending).toBe(true);
    d.deliver(1); // round 5: the last allowed; its confirming evaluation scores 0.8
    expect(d.of('evaluate').some((e) => e.purpose === 'confirm' && e.round === 5)).toBe(true);
    expect(sessionSnapshot(d.state)).toMatchObject({ state: 'completed', round: 5, message: 'reached 5 rounds' });
  });

  it('completes when the confirming evaluation fails and the round it waited for was the last one allowed', () => {
    const d = running({}, { targetAccuracy: 0.9, evalEvery: 2, maxRounds: 5 });
    d.accuracy = (purpose, round) => (purpose === 'periodic' && round === 4 ? 0.95 : 0.8);
    d.join(1);
    for (let i = 0; i < 4; i++) d.deliver(1);
    // Round 4's periodic evaluation answered while round 5 was open: confirm once it commits (held, then failed).
    expect(d.state.session!.completionPending).toBe(true);
    d.hold.add('evaluate');
    d.deliver(1);
    expect(d.held).toEqual([expect.objectContaining({ type: 'evaluate', purpose: 'confirm', round: 5 })]);
    d.send({ type: 'evaluation-failed', at: d.now, sessionId: 1, round: 5, purpose: 'confirm', message: 'the evaluator crashed' });
    expect(d.state.session!.ending).toMatchObject({ state: 'completed', message: 'reached 5 rounds' });
  });

  it('completes after a restart when the model as recovered already reached the target', () => {
    const before = running({}, { targetAccuracy: 0.9, evalEvery: 2 });
    before.accuracy = () => 0.95;
    before.hold.add('checkpoint'); // dies while the final checkpoint is written
    before.join(1);
    // Round 2's evaluation reaches the target while round 3 is open; round 3's confirms it.
    for (let i = 0; i < 3; i++) before.deliver(1);
    expect(before.state.session!.ending).toMatchObject({ state: 'completed', stage: 'checkpointing' });
    const durable = before.state.durable.sessions.get(1)!;
    expect(durable.state).toBe('running');

    const after = new EngineDriver();
    after.join(1);
    after.accuracy = () => 0.95;
    after.send({
      type: 'recovered', at: after.now, requestId: 99, session: structuredClone(durable), credits: before.state.durable.credits.get(1)!,
      recent: [...before.state.session!.recent], lastTestAccuracy: 0.95, lastTestLoss: 0.1, how: 'checkpoint at round 3', detail: {},
    });
    expect(sessionSnapshot(after.state)).toMatchObject({ state: 'completed', round: 3 });
    expect(sessionSnapshot(after.state)!.message).toMatch(/reached test accuracy 95\.00% \(target 90\.00%\) at round 3/);
    // Evaluated already at round 3: no final evaluation of the same model again.
    expect(after.of('evaluate')).toEqual([]);
    expect(after.assignment(1)).toBeUndefined();
  });

  it('completes on resume when the model was evaluated at the target while the session was paused', () => {
    const d = running({}, { targetAccuracy: 0.9, evalEvery: 2 });
    d.accuracy = (purpose, round) => (round >= 2 ? 0.95 : 0.5);
    d.join(1);
    d.deliver(1);
    expect(d.request('pause')).toMatchObject({ ok: true });
    d.deliver(1); // round 2 was open: it commits, and its evaluation (0.95) lands while paused
    expect(sessionSnapshot(d.state)).toMatchObject({ state: 'paused', round: 2, lastTestAccuracy: 0.95 });
    expect(d.request('resume')).toMatchObject({ ok: true });
    expect(sessionSnapshot(d.state)!.state).toBe('completed');
    expect(sessionSnapshot(d.state)!.message).toMatch(/reached test accuracy 95\.00% \(target 90\.00%\) at round 2/);
    expect(d.assignment(1)!.round).toBe(2); // no round 3 was handed out
  });

  it('a restarted session under its budget opens the next round', () => {
    const before = running({}, { maxSamples: 500 });
    before.join(1);
    for (let i = 0; i < 3; i++) before.deliver(1);
    const after = new EngineDriver();
    after.join(1);
    after.send({
      type: 'recovered', at: after.now, requestId: 99, session: structuredClone(before.state.durable.sessions.get(1)!), credits: before.state.durable.credits.get(1)!,
      recent: [], lastTestAccuracy: null, lastTestLoss: null, how: 'checkpoint at round 3', detail: {},
    });
    after.ready(1);
    expect(sessionSnapshot(after.state)!.state).toBe('running');
    expect(after.assignment(1)).toMatchObject({ round: 4 });
  });

  it('completes when an evaluation reaches the target, confirmed on the model as it is once rounds stop', () => {
    const d = running({}, { targetAccuracy: 0.9, evalEvery: 2 });
    d.accuracy = (purpose, round) => (round >= 4 ? 0.95 : 0.5);
    d.join(1);
    for (let i = 0; i < 4; i++) d.deliver(1);
    // Round 4's evaluation crossed the target while round 5 was already open: confirm after it commits.
    expect(d.state.session!.completionPending).toBe(true);
    d.deliver(1);
    expect(d.of('evaluate').at(-1)).toMatchObject({ purpose: 'confirm', round: 5 });
    expect(sessionSnapshot(d.state)).toMatchObject({ state: 'completed', round: 5 });
    expect(d.of('checkpoint').at(-1)).toMatchObject({ purpose: 'final' });
  });

  it('training carries on when the confirming evaluation falls short of the target', () => {
    const d = running({}, { targetAccuracy: 0.9, evalEvery: 2 });
    d.accuracy = (purpose) => (purpose === 'periodic' ? 0.95 : 0.8);
    d.join(1);
    for (let i = 0; i < 3; i++) d.deliver(1);
    expect(sessionSnapshot(d.state)!.state).toBe('running');
    expect(d.assignment(1)!.round).toBe(4);
  });

  it('a failed commit pauses the session with the reason and hands the round out again', () => {
    const d = running();
    d.join(1);
    d.hold.add('commit-round');
    d.deliver(1);
    const commit = d.held[0];
    d.hold.clear();
    d.held.length = 0;
    d.send({ type: 'commit-failed', at: d.now, sessionId: 1, round: 1, message: 'SQLITE_BUSY' });
    expect(commit.type).toBe('commit-round');
    expect(d.of('discard-update')).toHaveLength(1);
    expect(d.of('apply-update')).toHaveLength(0);
    expect(sessionSnapshot(d.state)).toMatchObject({ state: 'paused', round: 0, modelVersion: 0 });
    expect(sessionSnapshot(d.state)!.message).toContain('SQLITE_BUSY');
    d.request('resume');
    expect(d.assignment(1)).toMatchObject({ round: 1, shardStart: 0 });
  });

  it('a round opened again gets a new attempt: an update for the earlier opening is refused, not credited to the new shard', () => {
    const d = running();
    d.join(1);
    d.join(2);
    d.deliver(1); // round 1
    const before = d.assignment(2)!; // round 2, first opening
    d.hold.add('commit-round');
    d.deliver(1);
    d.deliver(2);
    d.hold.clear();
    d.held.length = 0;
    d.send({ type: 'commit-failed', at: d.now, sessionId: 1, round: 2, message: 'disk full' });
    d.request('resume');
    const after = d.assignment(2)!;
    expect(after.round).toBe(2);
    expect(after.attempt).not.toBe(before.attempt);
    d.deliver(2, { attempt: before.attempt, shardStart: before.shardStart, shardCount: before.shardCount, sampleCount: before.shardCount });
    expect(d.lastSent(2, 'rejected')).toMatchObject({ code: 'STALE_ATTEMPT' });
    // A restarted coordinator draws a new seed: its first opening of the same round has another attempt.
    const restarted = new EngineDriver();
    restarted.send({ type: 'booted', at: restarted.now, seed: 0x1234 });
    restarted.start();
    restarted.join(1);
    const first = new EngineDriver();
    first.start();
    first.join(1);
    expect(restarted.assignment(1)!.attempt).not.toBe(first.assignment(1)!.attempt);
  });

  it('a stop waiting for a round whose aggregation then fails still ends the session, and the shards go back', () => {
    const d = running();
    d.join(1);
    d.hold.add('aggregate');
    d.deliver(1);
    const stop = d.request('stop');
    expect(stop).toBeUndefined();
    const held = d.held.splice(0)[0];
    d.hold.clear();
    if (held.type !== 'aggregate') throw new Error('expected the aggregation to be held');
    d.send({ type: 'aggregation-failed', at: d.now, sessionId: held.sessionId, round: held.round, message: 'worker crashed' });
    expect(sessionSnapshot(d.state)).toMatchObject({ state: 'stopped', round: 0, modelVersion: 0 });
    expect(d.liveSlots.size).toBe(0);
    expect(d.state.session!.cursor.pending).toEqual([{ epoch: 0, start: 0, count: 100 }]);
  });

  it('shutdown waits for the round being committed, then checkpoints and saves a resumable session', () => {
    const d = running();
    d.join(1);
    d.hold.add('aggregate');
    d.deliver(1);
    expect(d.request('shutdown')).toBeUndefined();
    d.hold.clear();
    d.release();
    const reply = [...d.replies.values()].at(-1)!;
    expect(reply).toMatchObject({ ok: true, session: { state: 'running', round: 1 } });
    expect(d.of('checkpoint').at(-1)).toMatchObject({ purpose: 'shutdown' });
    expect(sessionSnapshot(d.state)!.message).toContain('resumes on the next start');
    expect(d.of('set-timer').filter((t) => t.timer === 'deadline').length).toBe(1); // no round opened after
  });

  it('reports status from the state alone', () => {
    const d = running();
    d.join(1);
    d.join(2);
    expect(statusOf(d.state, d.now)).toMatchObject({ state: 'running', round: 0, nodes: { total: 2, training: 1, active: 2 } });
  });
});

describe('round engine: committed events', () => {
  it('folding what was committed rebuilds the durable state, epochs closed included', () => {
    const d = running({}, { batchSize: 400 });
    d.join(1);
    d.join(2);
    for (let i = 0; i < 4; i++) {
      d.deliver(1);
      if (d.assignment(2)?.round === d.assignment(1)?.round) d.deliver(2);
    }
    d.request('stop');
    expect(d.committed.filter((e) => e.kind === 'epoch-closed').map((e) => e.kind === 'epoch-closed' && e.epoch)).toEqual([0, 1]);
    expect(evolveAll(EMPTY_DURABLE, d.committed)).toEqual(d.state.durable);
  });
});
