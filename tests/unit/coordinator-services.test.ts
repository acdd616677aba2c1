// The services around the engine, wired by createCoordinator over in-memory ports: the runner's effects,
// recovery from checkpoint + journal, name ownership, the outbox consumers. (The engine's own decisions are
// tested in engine.test.ts; real processes, sockets and SQLite in the integration and chaos suites.)
import { describe, expect, it } from 'vitest';
import { encodeFrame, decodeHeader, FrameKind } from '../../src/protocol/frame';
import type { Assignment } from '../../src/server/core/types';
import { EventBus } from '../../src/server/adapters/event-bus';
import { ResumeFailedError } from '../../src/server/services/control';
import { createCoordinator, type Coordinator } from '../../src/server/services/create-coordinator';
import { COMMIT_RETRY_DELAYS_MS } from '../../src/server/services/runner';
import { createFakeRepository } from '../support/fake-repository';
import { createFakeJournal } from '../support/fake-journal';
import { FakeAggregator, FakeClock, fakeCredentials, flush, MemoryCheckpointStore, RecordingLink, ScriptedEvaluator } from '../support/fakes';

const PARAMS = 8;
const caps = { backend: 'cpu', device: 'test', samplesPerSecond: 100, agentVersion: 't', hostname: 'h' };
const sgd = { optimizer: { name: 'sgd' as const, learningRate: 0.5, momentum: 0 }, batchSize: 100, evalEvery: 1000, checkpointEvery: 1000, roundTimeoutMs: 5000 };

interface Durable {
  clock: FakeClock;
  repo: ReturnType<typeof createFakeRepository>;
  checkpoints: MemoryCheckpointStore;
  journal: ReturnType<typeof createFakeJournal>;
  evaluator: ScriptedEvaluator;
}

async function boot(durable?: Durable, extra: { keepCheckpoints?: number } = {}) {
  const d: Durable = durable ?? {
    clock: new FakeClock(),
    repo: createFakeRepository(),
    checkpoints: new MemoryCheckpointStore(),
    journal: createFakeJournal(),
    evaluator: new ScriptedEvaluator(() => 0.5),
  };
  const aggregator = new FakeAggregator();
  const events = new EventBus();
  const coordinator = await createCoordinator({
    ...d,
    aggregator,
    createEvaluator: async () => d.evaluator,
    models: { paramCount: () => PARAMS, initialParams: () => new Float32Array(PARAMS).fill(1) },
    datasets: { describe: async () => ({ trainSize: 1000, testSize: 100 }) },
    credentials: fakeCredentials(),
    events,
    options: { heartbeatMs: 100, heartbeatTimeoutMs: 60_000, historyLimit: 1000, ...extra },
  });
  await coordinator.start();
  return { ...d, aggregator, events, coordinator, service: coordinator.service };
}

let nextConnection = 1;
const tokens = new Map<string, string>();

async function join(c: Coordinator, name: string) {
  const link = new RecordingLink();
  const connection = nextConnection++;
  c.channel.connected(connection, link);
  const id = await c.channel.hello(connection, name, caps, tokens.get(name));
  const issued = link.last('welcome')?.token;
  if (issued) tokens.set(name, issued);
  const sessionId = c.service.status().sessionId;
  if (sessionId) c.channel.ready(connection, id, sessionId);
  return { id, link, connection };
}

function send(c: Coordinator, agent: { id: number; connection: number }, a: Assignment, value: number) {
  const bytes = encodeFrame(
    { kind: FrameKind.Gradient, sessionId: a.sessionId, round: a.round, nodeId: a.nodeId, attempt: a.attempt, modelVersion: a.modelVersion, sampleCount: a.shardCount, trainLoss: 0.5 },
    new Float32Array(PARAMS).fill(value),
  );
  c.channel.frame(agent.connection, agent.id, bytes, decodeHeader(bytes), null);
}

describe('coordinator services', () => {
  it('trains through the runner: model frames out, updates into slots, the SGD step applied after the commit', async () => {
    const { coordinator: c, service, aggregator, repo } = await boot();
    const session = await service.start(sgd);
    const a = await join(c, 'a');
    expect(Array.from(a.link.lastModel())).toEqual(new Array(PARAMS).fill(1));
    send(c, a, a.link.last('assignment')!.assignment, 0.2);
    await flush();
    expect(service.status()).toMatchObject({ round: 1, modelVersion: 1 });
    expect(service.currentParams()![0]).toBeCloseTo(1 - 0.5 * 0.2, 6);
    expect(Array.from(a.link.lastModel())[0]).toBeCloseTo(0.9, 6);
    expect(aggregator.live.size).toBe(0);
    expect((await repo.listContributions(session.id)).map((c) => c.status)).toEqual(['applied']);
    // The committed events went to the outbox with the round.
    expect((await repo.readOutbox(0, 100)).map((r) => r.event.kind)).toEqual(['session-started', 'round-committed', 'node-credited']);
  });

  it('keeps a node name for the agent it was issued to, and closes the older socket of a returning one', async () => {
    const { coordinator: c } = await boot();
    const first = new RecordingLink();
    c.channel.connected(1001, first);
    const id = await c.channel.hello(1001, 'owner', caps);
    const token = first.last('welcome')!.token!;
    expect(token).toBeTruthy();
    c.channel.connected(1002, new RecordingLink());
    await expect(c.channel.hello(1002, 'owner', caps)).rejects.toMatchObject({ code: 'NAME_TAKEN' });
    await expect(c.channel.hello(1002, 'owner', caps, 'x'.repeat(32))).rejects.toMatchObject({ code: 'NAME_TAKEN' });
    const again = new RecordingLink();
    c.channel.connected(1003, again);
    expect(await c.channel.hello(1003, 'owner', caps, token)).toBe(id);
    expect(again.last('welcome')!.token).toBeUndefined();
    expect(first.closed?.code).toBe(4003);
  });

  it('starts a session from another’s checkpoint, and rebuilds it from those weights after a crash before its own first checkpoint', async () => {
    const first = await boot();
    const source = await first.service.start({ ...sgd, checkpointEvery: 2 });
    const a = await join(first.coordinator, 'a');
    for (let i = 0; i < 2; i++) {
      send(first.coordinator, a, a.link.last('assignment')!.assignment, 0.25);
      await flush();
    }
    const checkpoint = (await first.repo.latestCheckpoint(source.id))!;
    expect(checkpoint.round).toBe(2);
    const trained = first.service.currentParams()!.slice();
    await first.service.stop();
    await flush();
    await expect(first.service.start({ initFrom: { sessionId: source.id, round: 99 } })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const started = await first.service.start({ initFrom: { sessionId: source.id, round: 2 }, maxRounds: 100 });
    expect(started.config).toMatchObject({ initFrom: { sessionId: source.id, round: 2 }, batchSize: sgd.batchSize, maxRounds: 100, optimizer: { name: 'sgd' } });
    expect(first.service.modelIdentity()).toMatchObject({ sessionId: started.id, modelVersion: 0 });
    expect(Array.from(first.service.currentParams()!)).toEqual(Array.from(trained)); // the checkpoint's weights, not the seed's
    const b = await join(first.coordinator, 'b');
    send(first.coordinator, b, b.link.last('assignment')!.assignment, 0.5);
    await flush();
    const afterOne = first.service.currentParams()!.slice();
    expect(await first.repo.latestCheckpoint(started.id)).toBeNull(); // dies before its first checkpoint

    const second = await boot(first);
    const resumed = await second.service.resumeInterrupted();
    expect(resumed).toMatchObject({ id: started.id, modelVersion: 1 });
    expect(Array.from(second.service.currentParams()!)).toEqual(Array.from(afterOne));
  });

  it('rebuilds the exact model after a crash from the checkpoint plus the journal; credit and the ledger stay exact', async () => {
    const first = await boot();
    const session = await first.service.start({ ...sgd, optimizer: { name: 'adam', learningRate: 0.1 }, checkpointEvery: 2 });
    const a = await join(first.coordinator, 'a');
    for (let i = 0; i < 5; i++) {
      send(first.coordinator, a, a.link.last('assignment')!.assignment, 0.3 + i);
      await flush();
    }
    // No shutdown: the process "dies" here. Round 5 is applied and journaled, the last checkpoint is round 4.
    const params = first.service.currentParams()!.slice();
    expect((await first.repo.latestCheckpoint(session.id))?.round).toBe(4);

    const second = await boot(first);
    const resumed = await second.service.resumeInterrupted();
    expect(resumed).toMatchObject({ id: session.id, modelVersion: 5, round: 5 });
    expect(Array.from(second.service.currentParams()!)).toEqual(Array.from(params));
    const b = await join(second.coordinator, 'a');
    expect(second.service.node(b.id)).toMatchObject({ acceptedContributions: 5, acceptedSamples: 500 });
    const next = b.link.last('assignment')!.assignment;
    // The data cursor continues where round 5 left it.
    expect(next).toMatchObject({ round: 6, modelVersion: 5, shardStart: 500 });
    send(second.coordinator, b, next, 0.1);
    await flush();
    const ledger = await second.service.ledger(session.id);
    expect(ledger).toMatchObject({ ok: true, appliedRounds: 6, modelVersion: 6, appliedSamples: 600, modelSamples: 600 });
    expect((await first.repo.listEvents(session.id, 50)).map((e) => e.kind)).toContain('coordinator-restarted');
    // The next session gets the next id, whoever allocates it.
    await second.service.stop();
    expect((await second.service.start(sgd)).id).toBe(session.id + 1);
  });

  it('keeps the last K checkpoints (rows and files) and the journal back to the oldest of them', async () => {
    const first = await boot(undefined, { keepCheckpoints: 2 });
    const session = await first.service.start({ ...sgd, checkpointEvery: 2 });
    const a = await join(first.coordinator, 'a');
    for (let i = 0; i < 9; i++) {
      send(first.coordinator, a, a.link.last('assignment')!.assignment, 0.1 + i / 10);
      await flush();
    }
    const kept = await first.repo.listCheckpoints(session.id);
    expect(kept.map((c) => c.round)).toEqual([6, 8]);
    expect([...first.checkpoints.files.keys()].sort()).toEqual(kept.map((c) => c.path).sort());
    // Compacted only up to the oldest kept checkpoint: everything after version 6 is still there.
    expect(first.journal.entries(session.id).map((e) => e.modelVersion)).toEqual([7, 8, 9]);
  });

  it('at start, deletes checkpoint files no row refers to (a crash between a file and its row)', async () => {
    const first = await boot();
    const session = await first.service.start({ ...sgd, checkpointEvery: 2 });
    const a = await join(first.coordinator, 'a');
    for (let i = 0; i < 2; i++) {
      send(first.coordinator, a, a.link.last('assignment')!.assignment, 0.1);
      await flush();
    }
    const recorded = (await first.repo.listCheckpoints(session.id)).map((c) => c.path);
    expect(recorded).toHaveLength(1);
    const orphan = await first.checkpoints.write({ sessionId: session.id, round: 99, modelVersion: 99, params: new Float32Array(PARAMS), optimizerState: [], optimizerStep: 0 });
    await boot(first);
    expect([...first.checkpoints.files.keys()]).toEqual(recorded);
    expect(first.checkpoints.files.has(orphan.path)).toBe(false);
  });

  it('falls back to an older checkpoint when the newest is damaged, and rebuilds the same model', async () => {
    const first = await boot(undefined, { keepCheckpoints: 3 });
    const session = await first.service.start({ ...sgd, optimizer: { name: 'adam', learningRate: 0.1 }, checkpointEvery: 2 });
    const a = await join(first.coordinator, 'a');
    for (let i = 0; i < 7; i++) {
      send(first.coordinator, a, a.link.last('assignment')!.assignment, 0.3 + i);
      await flush();
    }
    const params = first.service.currentParams()!.slice();
    const newest = (await first.repo.latestCheckpoint(session.id))!;
    expect(newest.round).toBe(6);
    first.checkpoints.damage(newest.path);

    const second = await boot(first);
    const resumed = await second.service.resumeInterrupted();
    expect(resumed).toMatchObject({ id: session.id, modelVersion: 7, round: 7 });
    expect(Array.from(second.service.currentParams()!)).toEqual(Array.from(params));
    const events = await first.repo.listEvents(session.id, 50);
    const restarted = events.find((e) => e.kind === 'coordinator-restarted')!;
    expect(restarted.message).toContain('checkpoint at round 4');
    expect(restarted.message).toContain('1 newer checkpoint(s) unusable');
    expect(second.service.dashboard().logs.map((l) => l.message).join('\n')).toMatch(/checkpoint at round 6 \(model version 6\) is unusable: .*damaged/);
  });

  it('refuses to resume, marks the session failed with why, when no checkpoint and journal rebuild the model', async () => {
    const first = await boot(undefined, { keepCheckpoints: 1 });
    const session = await first.service.start({ ...sgd, checkpointEvery: 2 });
    const a = await join(first.coordinator, 'a');
    for (let i = 0; i < 5; i++) {
      send(first.coordinator, a, a.link.last('assignment')!.assignment, 0.1);
      await flush();
    }
    // One checkpoint kept (round 4), the journal compacted up to it: damaging it leaves no way back.
    first.checkpoints.damage((await first.repo.latestCheckpoint(session.id))!.path);
    const second = await boot(first);
    const failure = await second.service.resumeInterrupted().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ResumeFailedError);
    expect((failure as Error).message).toMatch(/cannot rebuild model version 5 exactly.*checkpoint at round 4 .*unusable/);
    expect(await first.repo.getSession(session.id)).toMatchObject({ state: 'failed', message: (failure as Error).message });
    expect(second.service.status().sessionId).toBeNull();
  });

  it('a resume that throws leaves the session resumable and says why in its message', async () => {
    const first = await boot();
    const session = await first.service.start(sgd);
    const a = await join(first.coordinator, 'a');
    send(first.coordinator, a, a.link.last('assignment')!.assignment, 0.1);
    await flush();
    const second = await boot(first);
    Object.assign(first.journal, { read: async () => { throw new Error('EIO: i/o error, read'); } });
    await expect(second.service.resumeInterrupted()).rejects.toThrow(/resume failed: EIO/);
    expect(await first.repo.getSession(session.id)).toMatchObject({ state: 'running', message: expect.stringContaining('resume failed: EIO') });
  });

  it('retries a transient commit failure, then pauses the session with the reason when it persists', async () => {
    const { coordinator: c, service, repo, clock } = await boot();
    const session = await service.start(sgd);
    const a = await join(c, 'a');
    const record = repo.recordRound.bind(repo);
    let failures = 2;
    Object.assign(repo, {
      recordRound: (...args: Parameters<typeof repo.recordRound>) => (failures-- > 0 ? Promise.reject(new Error('SQLITE_BUSY: database is locked')) : record(...args)),
    });
    send(c, a, a.link.last('assignment')!.assignment, 0.1);
    await flush();
    expect(service.status().round).toBe(0);
    for (const delay of COMMIT_RETRY_DELAYS_MS.slice(0, 2)) {
      clock.advance(delay);
      await flush();
    }
    expect(service.status()).toMatchObject({ state: 'running', round: 1, modelVersion: 1 });
    expect(service.dashboard().logs.filter((l) => l.message.includes('retry')).length).toBe(2);

    failures = 100;
    send(c, a, a.link.last('assignment')!.assignment, 0.1);
    await flush();
    for (const delay of COMMIT_RETRY_DELAYS_MS) {
      clock.advance(delay);
      await flush();
    }
    expect(service.status()).toMatchObject({ state: 'paused', round: 1, modelVersion: 1 });
    expect(service.status().session!.message).toContain('SQLITE_BUSY');
    expect((await repo.getSession(session.id))!.state).toBe('paused');
  });

  it('evaluates every evalEvery committed rounds from the outbox and completes on the target, with a final checkpoint', async () => {
    const { coordinator: c, service, evaluator, repo } = await boot();
    evaluator.calls.length = 0;
    const session = await service.start({ ...sgd, evalEvery: 2, targetAccuracy: 0.9 });
    const scripted = [0.5, 0.95, 0.96];
    Object.assign(evaluator, { evaluate: async (p: Float32Array) => ({ loss: 0.1, accuracy: scripted[evaluator.calls.push(p) - 1] ?? 0.97, samples: 100 }) });
    const a = await join(c, 'a');
    for (let i = 0; i < 8 && service.status().state === 'running'; i++) {
      send(c, a, a.link.last('assignment')!.assignment, 0.1);
      await flush();
    }
    expect(service.status()).toMatchObject({ state: 'completed' });
    expect(service.status().session!.lastTestAccuracy).toBeGreaterThanOrEqual(0.9);
    const checkpoints = await repo.listCheckpoints(session.id);
    expect(checkpoints.at(-1)!.round).toBe(service.status().round);
    expect(evaluator.closed).toBe(true);
    const metrics = await service.metrics();
    // Round 4's evaluation crossed the target while round 5 ran; round 5's model confirmed it.
    expect(metrics.history.filter((m) => m.testAccuracy !== null).map((m) => m.round)).toEqual([2, 4, 5]);
  });
});
