// The coordinator's round lifecycle driven by events, with a fake clock and in-memory ports: no sockets,
// no real time, no tfjs.
import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/server/adapters/event-bus';
import { encodeFrame, FrameKind } from '../../src/protocol/frame';
import type { Assignment } from '../../src/server/core/types';
import { Coordinator } from '../../src/server/services/coordinator';
import { createFakeRepository } from '../support/fake-repository';
import { createFakeJournal } from '../support/fake-journal';
import { FakeAggregator, FakeClock, fakeCredentials, flush, MemoryCheckpointStore, RecordingLink, ScriptedEvaluator } from '../support/fakes';

const PARAMS = 8;
const caps = { backend: 'cpu', device: 'test', samplesPerSecond: 100, agentVersion: 't', hostname: 'h' };

function setup(accuracyFor: (call: number) => number = () => 0.5) {
  const clock = new FakeClock();
  const repo = createFakeRepository();
  const aggregator = new FakeAggregator();
  const checkpoints = new MemoryCheckpointStore();
  const evaluator = new ScriptedEvaluator(accuracyFor);
  const journal = createFakeJournal();
  const coordinator = new Coordinator({
    repo,
    checkpoints,
    journal,
    aggregator,
    createEvaluator: async () => evaluator,
    models: { paramCount: () => PARAMS, initialParams: () => new Float32Array(PARAMS).fill(1) },
    datasets: { describe: async () => ({ trainSize: 1000, testSize: 100 }) },
    clock,
    credentials: fakeCredentials(),
    events: new EventBus(),
    options: { heartbeatMs: 100, heartbeatTimeoutMs: 1000, historyLimit: 1000 },
    log: process.env.DEBUG_COORDINATOR ? (line) => console.log(line.message) : undefined,
  });
  return { clock, repo, aggregator, checkpoints, evaluator, coordinator, journal };
}

/** A second coordinator on the first one's durable state (repository, checkpoints, journal): a restart. */
function restartOn(first: ReturnType<typeof setup>): Coordinator {
  return new Coordinator({
    repo: first.repo,
    checkpoints: first.checkpoints,
    journal: first.journal,
    aggregator: new FakeAggregator(),
    createEvaluator: async () => first.evaluator,
    models: { paramCount: () => PARAMS, initialParams: () => new Float32Array(PARAMS).fill(1) },
    datasets: { describe: async () => ({ trainSize: 1000, testSize: 100 }) },
    clock: first.clock,
    credentials: fakeCredentials(),
    events: new EventBus(),
    options: { heartbeatMs: 100, heartbeatTimeoutMs: 1000, historyLimit: 1000 },
  });
}

const tokens = new Map<string, string>();

async function join(coordinator: Coordinator, name: string) {
  const link = new RecordingLink();
  const id = await coordinator.registerNode(name, caps, link, tokens.get(name));
  const issued = link.last('welcome')?.token;
  if (issued) tokens.set(name, issued);
  const sessionId = coordinator.status().sessionId;
  if (sessionId) coordinator.markReady(id, sessionId);
  return { id, link };
}

function gradientFrame(a: Assignment, value: number, overrides: Partial<Parameters<typeof encodeFrame>[0]> = {}, params = PARAMS) {
  return encodeFrame(
    {
      kind: FrameKind.Gradient,
      sessionId: a.sessionId,
      round: a.round,
      nodeId: a.nodeId,
      attempt: a.attempt,
      modelVersion: a.modelVersion,
      sampleCount: a.shardCount,
      trainLoss: 0.5,
      ...overrides,
    },
    new Float32Array(params).fill(value),
  );
}

const sgd = { optimizer: { name: 'sgd' as const, learningRate: 0.5, momentum: 0 }, batchSize: 100, evalEvery: 1000, checkpointEvery: 1000, roundTimeoutMs: 5000 };

describe('coordinator rounds', () => {
  it('assigns every ready node, applies the sample-weighted mean when all have reported, and records one contribution each', async () => {
    const { coordinator, repo, aggregator } = setup();
    const session = await coordinator.start(sgd);
    const a = await join(coordinator, 'a');
    const b = await join(coordinator, 'b');
    // Round 1 opened as soon as the first node was ready; b joins from round 2.
    const r1 = a.link.last('assignment')!.assignment;
    expect(r1).toMatchObject({ round: 1, modelVersion: 0, shardStart: 0, shardCount: 100 });
    expect(Array.from(a.link.lastModel())).toEqual(new Array(PARAMS).fill(1));
    coordinator.receiveFrame(a.id, gradientFrame(r1, 0.2));
    await flush();
    expect(coordinator.status().modelVersion).toBe(1);
    expect(coordinator.currentParams()![0]).toBeCloseTo(1 - 0.5 * 0.2, 6);

    const ra = a.link.last('assignment')!.assignment;
    const rb = b.link.last('assignment')!.assignment;
    expect(ra.round).toBe(2);
    expect(rb.round).toBe(2);
    expect(new Set([ra.shardStart, rb.shardStart])).toEqual(new Set([100, 200]));
    coordinator.receiveFrame(a.id, gradientFrame(ra, 1));
    expect(coordinator.status().round).toBe(1); // still waiting for b
    coordinator.receiveFrame(b.id, gradientFrame(rb, 3));
    await flush();
    expect(coordinator.status()).toMatchObject({ round: 2, modelVersion: 2 });
    // Equal sample counts: mean gradient 2, so params 0.9 - 0.5 * 2.
    expect(coordinator.currentParams()![3]).toBeCloseTo(0.9 - 1, 6);
    const contributions = await repo.listContributions(session.id);
    expect(contributions.filter((c) => c.status === 'applied').map((c) => [c.round, c.nodeId])).toEqual([
      [1, a.id],
      [2, a.id],
      [2, b.id],
    ]);
    expect(aggregator.live.size).toBe(0);
    expect(coordinator.node(a.id)).toMatchObject({ acceptedContributions: 2, acceptedSamples: 200 });
  });

  it('cuts off a straggler once a quorum has delivered, and hands its shard out again', async () => {
    const { coordinator, clock, repo } = setup();
    const session = await coordinator.start({ ...sgd, roundTimeoutMs: 5000 });
    const a = await join(coordinator, 'a');
    // Finish round 1 with a alone so that b is in round 2 from the start.
    coordinator.receiveFrame(a.id, gradientFrame(a.link.last('assignment')!.assignment, 0));
    const b = await join(coordinator, 'b');
    await flush();
    const ra = a.link.last('assignment')!.assignment;
    const rb = b.link.last('assignment')!.assignment;
    expect(rb.round).toBe(2);
    clock.advance(100);
    coordinator.receiveFrame(a.id, gradientFrame(ra, 1));
    // Half the nodes delivered after 100 ms: b gets max(250 ms, 100 ms) more; both stay alive meanwhile.
    clock.advance(240);
    coordinator.heartbeat(b.id);
    await flush();
    expect(coordinator.status().round).toBe(1);
    expect(coordinator.node(b.id)!.status).toBe('training');
    clock.advance(10);
    await flush();
    expect(coordinator.status()).toMatchObject({ round: 2, modelVersion: 2 });
    expect(b.link.last('cancel')).toMatchObject({ round: 2 });
    const rounds = await repo.listRounds(session.id);
    expect(rounds.at(-1)).toMatchObject({ round: 2, applied: true, updates: 1, failures: 1 });
    // b's undelivered shard comes back first in round 3.
    const next = [a.link.last('assignment')!.assignment, b.link.last('assignment')!.assignment].find((x) => x.round === 3 && x.shardStart === rb.shardStart);
    expect(next).toBeDefined();
  });

  it('closes a round nobody delivers at the hard deadline without applying it, and keeps its shard', async () => {
    const { coordinator, clock, repo } = setup();
    const session = await coordinator.start({ ...sgd, roundTimeoutMs: 2000 });
    const a = await join(coordinator, 'a');
    const r1 = a.link.last('assignment')!.assignment;
    for (let t = 0; t < 19; t++) {
      clock.advance(100);
      coordinator.heartbeat(a.id);
    }
    await flush();
    expect(coordinator.status().round).toBe(0);
    clock.advance(100);
    await flush();
    expect(coordinator.status()).toMatchObject({ round: 1, modelVersion: 0 });
    expect((await repo.listRounds(session.id))[0]).toMatchObject({ round: 1, applied: false, updates: 0, failures: 1 });
    const r2 = a.link.last('assignment')!.assignment;
    expect(r2).toMatchObject({ round: 2, shardStart: r1.shardStart, shardCount: r1.shardCount });
    expect((await coordinator.ledger(session.id)).ok).toBe(true);
  });

  it('does not apply a round below quorum and records its updates as rejected, not credited', async () => {
    const { coordinator, clock, repo } = setup();
    const session = await coordinator.start({ ...sgd, minCompletion: 1 });
    const a = await join(coordinator, 'a');
    coordinator.receiveFrame(a.id, gradientFrame(a.link.last('assignment')!.assignment, 0));
    const b = await join(coordinator, 'b');
    await flush();
    coordinator.receiveFrame(a.id, gradientFrame(a.link.last('assignment')!.assignment, 1));
    coordinator.disconnect(b.id, b.link, 'test: connection lost');
    await flush();
    expect(coordinator.status()).toMatchObject({ round: 2, modelVersion: 1 });
    const contributions = await repo.listContributions(session.id);
    expect(contributions.filter((c) => c.round === 2).map((c) => [c.status, c.reason?.split(':')[0]])).toEqual([['rejected', 'QUORUM_NOT_MET']]);
    const ledger = await coordinator.ledger(session.id);
    expect(ledger).toMatchObject({ ok: true, appliedRounds: 1, modelVersion: 1, appliedUpdates: 1, rejectedByReason: { QUORUM_NOT_MET: 1 } });
    void clock;
  });

  it('benches a node that keeps missing the cut-off, so it stops slowing every round, and tries it again later', async () => {
    const { coordinator, clock } = setup();
    await coordinator.start({ ...sgd });
    const a = await join(coordinator, 'a');
    coordinator.receiveFrame(a.id, gradientFrame(a.link.last('assignment')!.assignment, 0));
    const slow = await join(coordinator, 'slow');
    await flush();
    const assignedRounds: number[] = [];
    for (let round = 2; round <= 12; round++) {
      const ra = a.link.last('assignment')!.assignment;
      expect(ra.round).toBe(round);
      const slowAssignment = slow.link.last('assignment')?.assignment;
      const slowAssigned = slowAssignment?.round === round;
      if (slowAssigned) assignedRounds.push(round);
      coordinator.receiveFrame(a.id, gradientFrame(ra, 0.1));
      coordinator.heartbeat(slow.id);
      // The slow node never delivers; when it is assigned, the straggler grace runs out.
      clock.advance(slowAssigned ? 300 : 10);
      coordinator.heartbeat(slow.id);
      coordinator.heartbeat(a.id);
      await flush();
    }
    // Assigned in rounds 2-4, benched for 4 rounds after missing 3 in a row, tried again in round 9,
    // missed it on probation, benched for 8 more.
    expect(assignedRounds).toEqual([2, 3, 4, 9]);
    expect(coordinator.node(slow.id)!.status).not.toBe('failed');
    expect(coordinator.status().round).toBe(12);
  });

  it('keeps per-node credit across a coordinator restart, whenever the node reconnects', async () => {
    const first = setup();
    await first.coordinator.start({ ...sgd, checkpointEvery: 1 });
    const a = await join(first.coordinator, 'a');
    for (let i = 0; i < 3; i++) {
      first.coordinator.receiveFrame(a.id, gradientFrame(a.link.last('assignment')!.assignment, 0.1));
      await flush();
    }
    const second = restartOn(first);
    await second.resumeInterrupted();
    const again = await join(second, 'a');
    expect(second.node(again.id)).toMatchObject({ acceptedContributions: 3, acceptedSamples: 300 });
  });

  it('rejects an update with an absurd norm', async () => {
    const { coordinator } = setup();
    await coordinator.start({ ...sgd, maxUpdateNorm: 1000 });
    const a = await join(coordinator, 'a');
    coordinator.receiveFrame(a.id, gradientFrame(a.link.last('assignment')!.assignment, 1e6));
    expect(a.link.last('rejected')?.code).toBe('ABSURD_NORM');
    coordinator.receiveFrame(a.id, gradientFrame(a.link.last('assignment')!.assignment, 1));
    await flush();
    expect(coordinator.status().modelVersion).toBe(1);
  });

  it('completes the session once its sample budget is applied', async () => {
    const { coordinator } = setup();
    await coordinator.start({ ...sgd, maxSamples: 250 });
    const a = await join(coordinator, 'a');
    for (let i = 0; i < 5 && coordinator.status().state === 'running'; i++) {
      coordinator.receiveFrame(a.id, gradientFrame(a.link.last('assignment')!.assignment, 0.1));
      await flush();
    }
    expect(coordinator.status()).toMatchObject({ state: 'completed', round: 3 });
    expect(coordinator.status().session!.totalSamples).toBe(300);
  });

  it('rejects duplicate, stale, future, foreign, mis-sized and non-finite updates with reasons, and records them', async () => {
    const { coordinator, repo, aggregator } = setup();
    const session = await coordinator.start(sgd);
    const a = await join(coordinator, 'a');
    const b = await join(coordinator, 'b');
    const r1 = a.link.last('assignment')!.assignment;
    expect(b.link.last('assignment')).toBeUndefined(); // b joined after round 1 opened

    const rejected = (link: RecordingLink) => link.last('rejected')?.code;
    coordinator.receiveFrame(b.id, gradientFrame(r1, 1, { nodeId: b.id }));
    expect(rejected(b.link)).toBe('NOT_ASSIGNED');
    coordinator.receiveFrame(b.id, gradientFrame(r1, 1));
    expect(rejected(b.link)).toBe('WRONG_NODE');
    coordinator.receiveFrame(a.id, gradientFrame(r1, 1, { round: 2 }));
    expect(rejected(a.link)).toBe('FUTURE_ROUND');
    coordinator.receiveFrame(a.id, gradientFrame(r1, 1, { sessionId: 999 }));
    expect(rejected(a.link)).toBe('UNKNOWN_SESSION');
    coordinator.receiveFrame(a.id, gradientFrame(r1, 1, { sampleCount: 5 }));
    expect(rejected(a.link)).toBe('BAD_SAMPLE_COUNT');
    coordinator.receiveFrame(a.id, gradientFrame(r1, 1, {}, PARAMS + 1));
    expect(rejected(a.link)).toBe('PARAM_COUNT');
    coordinator.receiveFrame(a.id, gradientFrame(r1, Number.NaN));
    expect(rejected(a.link)).toBe('NON_FINITE');
    coordinator.receiveFrame(a.id, new Uint8Array([1, 2, 3]));
    expect(rejected(a.link)).toBe('FRAME_TRUNCATED');
    expect(coordinator.status().round).toBe(0);
    expect(aggregator.live.size).toBe(0);

    coordinator.receiveFrame(a.id, gradientFrame(r1, 1));
    coordinator.receiveFrame(a.id, gradientFrame(r1, 1));
    await flush();
    // The second copy arrives after round 1 closed: stale, never applied twice.
    expect(rejected(a.link)).toBe('STALE_ROUND');
    const contributions = await repo.listContributions(session.id);
    expect(contributions.filter((c) => c.status === 'applied')).toHaveLength(1);
    const reasons = contributions.filter((c) => c.status === 'rejected').map((c) => c.reason!.split(':')[0]);
    expect(reasons.sort()).toEqual(['NOT_ASSIGNED', 'WRONG_NODE', 'FUTURE_ROUND', 'UNKNOWN_SESSION', 'BAD_SAMPLE_COUNT', 'PARAM_COUNT', 'NON_FINITE', 'FRAME_TRUNCATED', 'STALE_ROUND'].sort());
  });

  it('fails a silent node after the heartbeat timeout and drops it from the round', async () => {
    const { coordinator, clock } = setup();
    await coordinator.start(sgd);
    const a = await join(coordinator, 'a');
    const b = await join(coordinator, 'b');
    coordinator.receiveFrame(a.id, gradientFrame(a.link.last('assignment')!.assignment, 0));
    await flush();
    for (let t = 0; t < 13; t++) {
      clock.advance(100);
      coordinator.heartbeat(a.id);
    }
    await flush();
    expect(coordinator.node(b.id)).toMatchObject({ status: 'failed' });
    expect(coordinator.node(b.id)!.statusReason).toMatch(/no heartbeat/);
    expect(b.link.closed?.code).toBe(4004);
    expect(coordinator.node(a.id)!.status).not.toBe('failed');
  });

  it('pause lets the open round finish and opens no new one until resume', async () => {
    const { coordinator } = setup();
    await coordinator.start(sgd);
    const a = await join(coordinator, 'a');
    await coordinator.pause();
    coordinator.receiveFrame(a.id, gradientFrame(a.link.last('assignment')!.assignment, 1));
    await flush();
    expect(coordinator.status()).toMatchObject({ state: 'paused', round: 1, modelVersion: 1 });
    expect(a.link.all('assignment')).toHaveLength(1);
    await coordinator.resume();
    expect(a.link.all('assignment')).toHaveLength(2);
    await expect(coordinator.resume()).rejects.toThrow(/it is running/);
  });

  it('completes the session when an evaluation reaches the target accuracy, with a final checkpoint', async () => {
    const { coordinator, checkpoints, repo, evaluator } = setup((call) => (call >= 2 ? 0.97 : 0.6));
    const session = await coordinator.start({ ...sgd, evalEvery: 2, targetAccuracy: 0.95 });
    const a = await join(coordinator, 'a');
    for (let i = 0; i < 6 && coordinator.status().state === 'running'; i++) {
      const assignment = a.link.last('assignment')!.assignment;
      coordinator.receiveFrame(a.id, gradientFrame(assignment, 0.1));
      await flush();
    }
    expect(coordinator.status().state).toBe('completed');
    expect(coordinator.status().session!.lastTestAccuracy).toBeCloseTo(0.97);
    const stored = await repo.getSession(session.id);
    expect(stored?.state).toBe('completed');
    const latest = await repo.latestCheckpoint(session.id);
    expect(latest?.round).toBe(coordinator.status().round);
    expect(checkpoints.files.size).toBeGreaterThan(0);
    // The ended session's evaluator worker is let go.
    expect(evaluator.closed).toBe(true);
  });

  it('keeps a node name for the agent it was issued to', async () => {
    const { coordinator } = setup();
    const first = new RecordingLink();
    const id = await coordinator.registerNode('owner', caps, first);
    const token = first.last('welcome')!.token!;
    expect(token).toBeTruthy();
    await expect(coordinator.registerNode('owner', caps, new RecordingLink())).rejects.toMatchObject({ code: 'NAME_TAKEN' });
    await expect(coordinator.registerNode('owner', caps, new RecordingLink(), 'x'.repeat(32))).rejects.toMatchObject({ code: 'NAME_TAKEN' });
    const again = new RecordingLink();
    expect(await coordinator.registerNode('owner', caps, again, token)).toBe(id);
    // No new token for a returning agent, and the older socket is closed as replaced.
    expect(again.last('welcome')!.token).toBeUndefined();
    expect(first.closed?.code).toBe(4003);
  });

  it('rebuilds the exact model after a crash from the checkpoint plus the journal, and the ledger stays exact', async () => {
    const first = setup();
    const session = await first.coordinator.start({ ...sgd, optimizer: { name: 'adam', learningRate: 0.1 }, checkpointEvery: 2 });
    const a = await join(first.coordinator, 'a');
    for (let i = 0; i < 5; i++) {
      first.coordinator.receiveFrame(a.id, gradientFrame(a.link.last('assignment')!.assignment, 0.3 + i));
      await flush();
    }
    // No shutdown: the process "dies" here. Round 5 is applied and journaled, the last checkpoint is round 4.
    const params = first.coordinator.currentParams()!.slice();
    expect((await first.repo.latestCheckpoint(session.id))?.round).toBe(4);

    const second = restartOn(first);
    const resumed = await second.resumeInterrupted();
    expect(resumed).toMatchObject({ id: session.id, modelVersion: 5, round: 5 });
    expect(Array.from(second.currentParams()!)).toEqual(Array.from(params));
    const b = await join(second, 'a');
    const next = b.link.last('assignment')!.assignment;
    // The data cursor continues where round 5 left it.
    expect(next).toMatchObject({ round: 6, modelVersion: 5, shardStart: 500 });
    second.receiveFrame(b.id, gradientFrame(next, 0.1));
    await flush();
    const ledger = await second.ledger(session.id);
    expect(ledger).toMatchObject({ ok: true, appliedRounds: 6, modelVersion: 6, appliedSamples: 600, modelSamples: 600 });
    expect((await first.repo.listEvents(session.id, 50)).map((e) => e.kind)).toContain('coordinator-restarted');
  });
});
