// The API's procedures: one file each, each with input and output schemas, assembled into the tRPC router under
// the names the dashboard and scripts use, and answering with outputs their schemas accept. Runs the tRPC router
// in-process (createCaller) against a TrainingControl made of plain objects.
import { fakeTimelines } from '../support/fake-audit-store';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRPCError, type inferRouterInputs, type inferRouterOutputs } from '@trpc/server';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { AdmissionError } from '../../src/protocol/errors';
import type { EventBus } from '../../src/server/adapters/event-bus';
import { appRouter, type AppRouter } from '../../src/server/api/root';
import { isDefinition, type ProcedureDefinition } from '../../src/server/api/procedure';
import { listProcedures, listRestProcedures, procedureTree } from '../../src/server/api/procedures';
import { createCallerFactory } from '../../src/server/api/trpc';
import type { Caller } from '../../src/server/core/operator-access';
import type { LiveMessage } from '../../src/server/api/dto';
import type { DashboardSnapshot, StatusSnapshot } from '../../src/server/core/events';
import type { NodeSnapshot, SessionSnapshot } from '../../src/server/core/types';
import type { LedgerReport } from '../../src/server/core/ledger';
import { createFakeControl, fakeMetric, type FakeControl } from '../support/fake-control';
import { createFakeRepository } from '../support/fake-repository';
import { FakeClock, fakeCredentials } from '../support/fakes';
import { JoinTokens } from '../../src/server/services/join-tokens';
import { RewardsService } from '../../src/server/services/rewards';
import { createFakeRewardsRepository, SEEDED_ADDRESS, seedSettlement } from '../support/fake-rewards';

const PROCEDURES_DIR = fileURLToPath(new URL('../../src/server/api/procedures/', import.meta.url));
const createCaller = createCallerFactory(appRouter);
const OPERATOR: Caller = { kind: 'operator', via: 'token' };
const callerFor = (
  control: FakeControl,
  caller: Caller = OPERATOR,
  privateReads = false,
  joinTokens = new JoinTokens(createFakeRepository(), fakeCredentials(), new FakeClock(), false),
) => createCaller({ control, startedAt: Date.now() - 65_000, caller: () => caller, privateReads, joinTokens, timelines: fakeTimelines(), rewards: new RewardsService(createFakeRewardsRepository(), null, () => null) });

function procedureFiles(dir = PROCEDURES_DIR): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return procedureFiles(full);
    return entry.name.endsWith('.ts') && full !== path.join(PROCEDURES_DIR, 'index.ts') ? [full] : [];
  });
}

/** procedures/nodes/by-id.ts -> nodes.byId */
function trpcPathOf(file: string): string {
  const relative = path.relative(PROCEDURES_DIR, file).replace(/\.ts$/, '');
  return relative
    .split(path.sep)
    .map((part) => part.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()))
    .join('.');
}

const isSchema = (value: unknown): value is z.ZodType => value instanceof z.ZodType;

describe('procedure files', () => {
  it('hold one definition each, registered under the tRPC path their file path names', async () => {
    const files = procedureFiles();
    const registered = new Map(listRestProcedures().concat(listProcedures().filter((p) => !p.definition.rest)).map((p) => [p.path, p.definition]));
    for (const file of files) {
      const exported = Object.values(await import(file)).filter((value) => typeof value === 'object' && value !== null && isDefinition(value as ProcedureDefinition));
      expect(exported, file).toHaveLength(1);
      expect(registered.get(trpcPathOf(file)), file).toBe(exported[0]);
    }
    expect(files).toHaveLength(registered.size);
  });

  it('declare an input schema (or null for none) and an output schema', () => {
    for (const { path: name, definition } of listProcedures()) {
      expect(definition.input === null || isSchema(definition.input), name).toBe(true);
      expect(isSchema(definition.output), name).toBe(true);
      expect(['query', 'mutation', 'subscription'], name).toContain(definition.kind);
    }
  });
});

describe('REST bindings', () => {
  const bound = listRestProcedures().filter((p) => p.definition.rest);

  it('are unique per method and path (path parameters compared by position)', () => {
    const keys = bound.map(({ definition }) => `${definition.rest!.method} ${definition.rest!.path.replace(/:[^/]+/g, ':')}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('cover every path of the original REST design with its method and status', () => {
    const table = Object.fromEntries(bound.map(({ path: name, definition }) => [`${definition.rest!.method} ${definition.rest!.path}`, [name, definition.rest!.status ?? 200]]));
    expect(table).toEqual({
      'GET /health': ['health', 200],
      'GET /api/status': ['training.status', 200],
      'GET /api/model': ['training.model', 200],
      'GET /api/metrics': ['training.metrics', 200],
      'GET /api/sessions': ['training.sessions', 200],
      'GET /api/sessions/:id': ['training.session', 200],
      'GET /api/sessions/:sessionId/rounds': ['training.rounds', 200],
      'GET /api/sessions/:sessionId/contributions': ['training.contributions', 200],
      'GET /api/sessions/:sessionId/checkpoints': ['training.checkpoints', 200],
      'GET /api/sessions/:sessionId/events': ['training.events', 200],
      'GET /api/sessions/:sessionId/ledger': ['training.ledger', 200],
      'POST /api/training/start': ['training.start', 201],
      'POST /api/training/pause': ['training.pause', 200],
      'POST /api/training/resume': ['training.resume', 200],
      'POST /api/training/stop': ['training.stop', 200],
      'GET /api/nodes': ['nodes.list', 200],
      'GET /api/nodes/:id': ['nodes.byId', 200],
      'GET /api/nodes/:id/timeline': ['nodes.contributionTimeline', 200],
      'GET /api/datasets': ['datasets.list', 200],
      'POST /api/join-tokens': ['agents.issueJoinToken', 201],
      'GET /api/join-tokens': ['agents.joinTokens', 200],
      'POST /api/join-tokens/:id/revoke': ['agents.revokeJoinToken', 200],
      'GET /api/config': ['config', 200],
      'GET /api/sessions/summaries': ['training.summaries', 200],
      'GET /api/sessions/:sessionId/round-timeline': ['training.roundTimeline', 200],
      'GET /api/nodes/:id/activity': ['nodes.activity', 200],
      'POST /api/nodes/:id/kick': ['nodes.kick', 200],
      'POST /api/bans': ['nodes.banAddress', 200],
      'GET /api/sessions/:sessionId/model/model.json': ['models.latestModelJson', 200],
      'GET /api/sessions/:sessionId/model/weights.bin': ['models.latestModelWeights', 200],
      'GET /api/sessions/:sessionId/checkpoints/:round/model.json': ['models.checkpointModelJson', 200],
      'GET /api/sessions/:sessionId/checkpoints/:round/weights.bin': ['models.checkpointModelWeights', 200],
      'GET /api/blockchain/session': ['blockchain.session', 200],
      'GET /api/blockchain/rewards': ['blockchain.rewards', 200],
      'GET /api/blockchain/proof': ['blockchain.proof', 200],
      'GET /api/blockchain/leaderboard': ['blockchain.leaderboard', 200],
    });
  });

  it('map path and query parameters onto fields of the input schema', () => {
    for (const { path: name, definition } of bound) {
      const rest = definition.rest!;
      const fields = [...rest.path.matchAll(/:([^/]+)/g)].map((m) => m[1]).concat(rest.query ?? []);
      if (fields.length === 0) continue;
      expect(definition.input, name).not.toBeNull();
      let schema = definition.input as z.ZodType;
      while (schema instanceof z.ZodOptional) schema = schema.unwrap() as z.ZodType;
      expect(schema, name).toBeInstanceOf(z.ZodObject);
      for (const field of fields) expect(Object.keys((schema as z.ZodObject).shape), `${name} ${field}`).toContain(field);
    }
  });

  it('never bind a subscription', () => {
    for (const { path: name, definition } of listProcedures()) if (definition.kind === 'subscription') expect(definition.rest, name).toBeNull();
  });
});

describe('tRPC router', () => {
  it('has exactly the registered procedures, under the names the dashboard and scripts use', () => {
    const names = Object.keys(appRouter._def.procedures).sort();
    expect(names).toEqual(listProcedures().map((p) => p.path).sort());
    for (const name of ['training.status', 'training.start', 'training.pause', 'training.resume', 'training.stop', 'nodes.list', 'nodes.byId', 'live.dashboard']) {
      expect(names).toContain(name);
    }
    expect(Object.keys(procedureTree)).toEqual(['health', 'config', 'datasets', 'training', 'nodes', 'live', 'agents', 'blockchain', 'models']);
  });

  it('gives the client the domain types (checked by tsc)', () => {
    type Out = inferRouterOutputs<AppRouter>;
    type In = inferRouterInputs<AppRouter>;
    expectTypeOf<Out['training']['status']>().toEqualTypeOf<StatusSnapshot>();
    expectTypeOf<Out['training']['start']>().toEqualTypeOf<SessionSnapshot>();
    expectTypeOf<Out['training']['ledger']>().toEqualTypeOf<LedgerReport>();
    expectTypeOf<Out['nodes']['list']>().toEqualTypeOf<NodeSnapshot[]>();
    expectTypeOf<In['nodes']['byId']>().toEqualTypeOf<{ id: number | string }>();
    expectTypeOf<LiveMessage>().toEqualTypeOf<{ type: 'snapshot'; snapshot: DashboardSnapshot } | import('../../src/server/core/events').CoordinatorEvent>();
  });

  it('answers every query and mutation with an output its schema accepts', async () => {
    const control = createFakeControl();
    const rewardsRepo = createFakeRewardsRepository();
    await seedSettlement(rewardsRepo);
    const caller = createCaller({ control, startedAt: Date.now(), caller: () => OPERATOR, joinTokens: new JoinTokens(createFakeRepository(), fakeCredentials(), new FakeClock(), false), timelines: fakeTimelines(), rewards: new RewardsService(rewardsRepo, null, () => null) }) as any;
    const inputs: Record<string, unknown> = {
      'blockchain.rewards': { address: SEEDED_ADDRESS },
      'blockchain.proof': { address: SEEDED_ADDRESS, seq: 1 },
      'training.start': { model: 'mlp', optimizer: 'sgd', learningRate: 0.05, rounds: 10 },
      'training.session': { id: 1 },
      'training.rounds': { sessionId: 1 },
      'training.contributions': { sessionId: 1 },
      'training.checkpoints': { sessionId: 1 },
      'training.events': { sessionId: 1 },
      'training.ledger': { sessionId: 1 },
      'nodes.byId': { id: 1 },
      'nodes.activity': { id: 'node-1' },
      'training.roundTimeline': { sessionId: 1 },
      'models.latestModelJson': { sessionId: 1 },
      'models.checkpointModelJson': { sessionId: 1, round: 2 },
      'nodes.kick': { id: 2, reason: 'test' },
      'nodes.banAddress': { address: '10.0.0.9', seconds: 60 },
      'nodes.contributionTimeline': { id: 1 },
      'agents.issueJoinToken': { label: 'pool', expiresInSeconds: 60 },
      'agents.revokeJoinToken': { id: 1 },
    };
    const all = listProcedures();
    const mutations = ['training.start', 'agents.issueJoinToken', 'nodes.kick', 'training.pause', 'training.resume', 'training.stop', 'agents.revokeJoinToken'];
    expect(all.filter((p) => p.definition.kind === 'mutation').map((p) => p.path).sort()).toEqual([...mutations, 'nodes.banAddress'].sort());
    // start first, then every read (they see a session with records), then the other mutations in order.
    const byName = new Map(all.map((p) => [p.path, p.definition]));
    const sequence = [...mutations.slice(0, 2), ...all.filter((p) => p.definition.kind === 'query').map((p) => p.path), ...mutations.slice(2)];
    // nodes.banAddress needs the gateway (the fake has none: CONFLICT, checked below), so it is left out here.
    expect(all.some((p) => p.path === 'nodes.banAddress')).toBe(true);
    for (const name of sequence) {
      const fn = name.split('.').reduce((node, key) => node[key], caller);
      const result = await fn(inputs[name]);
      const parsed = byName.get(name)!.output.safeParse(result);
      expect(parsed.success, `${name}: ${parsed.error?.message}`).toBe(true);
    }
    expect(control.data.session?.state).toBe('stopped');
  });

  it('returns what the session records hold, NaN losses included', async () => {
    const control = createFakeControl();
    const caller = callerFor(control);
    const session = await caller.training.start({ model: 'mlp', batchSize: 64 });
    expect(session).toMatchObject({ id: 1, state: 'running', config: { model: 'mlp', batchSize: 64 } });
    const contributions = await caller.training.contributions({ sessionId: 1 });
    expect(contributions).toHaveLength(2);
    expect(contributions[1].trainLoss).toBeNaN();
    expect(await caller.training.events({ sessionId: 1 })).toEqual(control.data.events);
    expect(await caller.health()).toEqual({ status: 'ok', version: '0.0.0', uptimeSeconds: 65, state: 'running', components: [] });
    await expect(caller.nodes.banAddress({ address: '10.0.0.9', seconds: 60 })).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(caller.nodes.banAddress({ address: '../etc', seconds: 60 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('strips fields the output schema does not declare', async () => {
    const control = createFakeControl();
    control.data.nodes[0] = { ...control.data.nodes[0], secretToken: 'xyz' } as any;
    const [node] = await callerFor(control).nodes.list();
    expect(node).not.toHaveProperty('secretToken');
    expect(node.name).toBe('node-1');
  });

  it('translates coded errors through the error table', async () => {
    const control = createFakeControl();
    const caller = callerFor(control);
    const codeOf = async (promise: Promise<unknown>) => {
      const error = await promise.then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TRPCError);
      return (error as TRPCError).code;
    };
    expect(await codeOf(caller.nodes.byId({ id: 99 }))).toBe('NOT_FOUND');
    expect(await codeOf(caller.training.pause())).toBe('CONFLICT');
    expect(await codeOf(caller.training.session({ id: 7 }))).toBe('NOT_FOUND');
    expect(await codeOf(caller.training.rounds({ sessionId: 7 }))).toBe('NOT_FOUND');
    expect(await codeOf(caller.nodes.byId({ id: -1 }))).toBe('BAD_REQUEST');
    expect(await codeOf(caller.training.start({ model: 'transformer' } as any))).toBe('BAD_REQUEST');
    control.nodes = () => {
      throw new AdmissionError('NOT_ASSIGNED', 'node 3 has no assignment in round 9');
    };
    expect(await codeOf(caller.nodes.list())).toBe('FORBIDDEN');
    control.status = () => ({ state: 'dancing' }) as any;
    expect(await codeOf(caller.training.status())).toBe('INTERNAL_SERVER_ERROR');
  });
});

describe('operator access', () => {
  it('needs the operator for every mutation: UNAUTHORIZED without a credential, FORBIDDEN with a wrong one', async () => {
    const control = createFakeControl();
    const codeOf = (promise: Promise<unknown>) => promise.then(() => null, (e: unknown) => (e as TRPCError).code);
    const anonymous = callerFor(control, { kind: 'anonymous' });
    const wrong = callerFor(control, { kind: 'invalid', why: 'the sign-in session has expired or was signed out' });
    for (const name of ['training.start', 'training.pause', 'training.resume', 'training.stop']) {
      const call = (c: any) => name.split('.').reduce((node, key) => node[key], c)(name === 'training.start' ? {} : undefined);
      expect(await codeOf(call(anonymous)), name).toBe('UNAUTHORIZED');
      expect(await codeOf(call(wrong)), name).toBe('FORBIDDEN');
    }
    expect(control.data.session).toBeNull();
    const refused = await anonymous.training.stop().catch((e: TRPCError) => e.message);
    expect(refused).toMatch(/sign in at \/sign-in or send Authorization: Bearer/);
    // Reads are public unless the server keeps them private.
    expect((await anonymous.training.status()).state).toBe('idle');
    expect(await codeOf(callerFor(control, { kind: 'anonymous' }, true).training.status())).toBe('UNAUTHORIZED');
    expect((await callerFor(control, { kind: 'operator', via: 'session' }, true).training.status()).state).toBe('idle');
  });

  it('refuses settings that could hurt the coordinator, with the reason', async () => {
    const caller = callerFor(createFakeControl());
    const reasonOf = (input: object) => caller.training.start(input as any).then(() => null, (e: TRPCError) => `${e.code} ${e.message}`);
    expect(await reasonOf({ maxUpdateNorm: 1e300 })).toMatch(/BAD_REQUEST.*maxUpdateNorm|BAD_REQUEST.*10000/s);
    expect(await reasonOf({ minCompletion: 0 })).toMatch(/BAD_REQUEST/);
    expect(await reasonOf({ checkpointEvery: 1 })).toMatch(/BAD_REQUEST/);
    expect(await reasonOf({ roundTimeoutMs: 100 })).toMatch(/BAD_REQUEST/);
    expect(await reasonOf({ maxUpdateNorm: 1e4, minCompletion: 0.1, checkpointEvery: 5 })).toBeNull();
  });

  it('declares every mutation operator-only and every read public, but the join-token list (it names who may join)', () => {
    const operatorReads = new Set(['agents.joinTokens']);
    for (const { path: name, definition } of listProcedures()) {
      expect(definition.access, name).toBe(definition.kind === 'mutation' || operatorReads.has(name) ? 'operator' : 'public');
    }
  });
});

describe('training.metrics', () => {
  it('returns the last 1000 points by default, with the headline figures of the original REST design', async () => {
    const control = createFakeControl(1500);
    const report = await callerFor(control).training.metrics();
    expect(control.lastMetricsCall).toEqual({ sessionId: undefined, limit: 1000 });
    expect(report.history).toHaveLength(1000);
    expect(report.history[0].round).toBe(501);
    expect(report).toMatchObject({ round: 1500, loss: 2 / 1500, accuracy: 0.5 + 1500 / 1000, testLoss: 1 / 1500, samples: 128 * 1500, samplesPerSecond: 1280 });
    expect(report.latest).toEqual(fakeMetric(1500));
  });

  it('takes the points after round `since`, at most `limit` of them, and the last evaluation from the whole history', async () => {
    const control = createFakeControl(12);
    const report = await callerFor(control).training.metrics({ since: 3, limit: 2 });
    expect(report.history.map((m) => m.round)).toEqual([4, 5]);
    expect(report.accuracy).toBe(0.5 + 10 / 1000);
    expect(control.lastMetricsCall?.limit).toBe(100_000);
  });

  it('reports nulls and zeros before the first round', async () => {
    const report = await callerFor(createFakeControl(0)).training.metrics({ limit: 5 });
    expect(report).toEqual({ sessionId: null, round: 0, loss: null, accuracy: null, testLoss: null, samples: 0, samplesPerSecond: 0, latest: null, history: [] });
  });
});

describe('live.dashboard', () => {
  it('yields a snapshot, then coordinator events, each checked against the message schema', async () => {
    const control = createFakeControl(3);
    const abort = new AbortController();
    const iterable = (await (callerFor(control).live.dashboard as any)(undefined, { signal: abort.signal })) as AsyncIterable<LiveMessage>;
    const iterator = iterable[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value).toMatchObject({ type: 'snapshot', snapshot: { status: { state: 'idle' }, metrics: [{ round: 1 }, { round: 2 }, { round: 3 }] } });
    control.events.publish({ type: 'metric', sessionId: 1, metric: fakeMetric(4, { trainLoss: Number.POSITIVE_INFINITY }) });
    const second = await iterator.next();
    expect(second.value).toMatchObject({ type: 'metric', sessionId: 1, metric: { round: 4, trainLoss: Number.POSITIVE_INFINITY } });
    control.events.publish({ type: 'log', line: { at: 1, level: 'loud', message: 'x' } } as any);
    await expect(iterator.next()).rejects.toThrow();
    expect((control.events as EventBus).size).toBe(0);
    abort.abort();
  });
});
