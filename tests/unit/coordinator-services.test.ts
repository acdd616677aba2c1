// The services around the engine, wired by createCoordinator over in-memory ports: the runner's effects,
// recovery from checkpoint + journal, name ownership, the outbox consumers. (The engine's own decisions are
// tested in engine.test.ts; real processes, sockets and SQLite in the integration and chaos suites.)
import { describe, expect, it } from 'vitest';
import { encodeFrame, decodeHeader, FrameKind } from '../../src/protocol/frame';
import type { Assignment } from '../../src/server/core/types';
import { EventBus } from '../../src/server/adapters/event-bus';
import { createCoordinator, type Coordinator } from '../../src/server/services/create-coordinator';
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

async function boot(durable?: Durable) {
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
    options: { heartbeatMs: 100, heartbeatTimeoutMs: 60_000, historyLimit: 1000 },
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
