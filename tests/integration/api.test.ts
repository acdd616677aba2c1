// The REST endpoints of the original design and tRPC over HTTP, against the real server with a real agent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, OPERATOR_HEADERS, startServer, waitForHttp, type ServerProcess } from '../support/server-process';

describe('REST and tRPC API', () => {
  let server: ServerProcess;
  const get = async (path: string) => {
    const res = await fetch(`${server.baseUrl}${path}`);
    return { status: res.status, body: (await res.json()) as any };
  };
  const post = async (path: string, body?: string) => {
    // The operator's token: every mutation needs it (tests/integration/security-operator.test.ts tries without).
    const res = await fetch(`${server.baseUrl}${path}`, { method: 'POST', body, headers: { ...OPERATOR_HEADERS, ...(body ? { 'content-type': 'application/json' } : {}) } });
    return { status: res.status, body: (await res.json()) as any };
  };
  const round = async () => (await get('/api/status')).body.round as number;

  beforeAll(async () => {
    server = await startServer(['--no-dashboard', '--no-session', '--nodes', '1']);
    await waitForHttp(`${server.baseUrl}/health`);
  });

  afterAll(async () => {
    const code = await server?.stop('SIGTERM');
    expect(code).toBe(0);
    expect(server.output()).toMatch(/HyperGPU stopped cleanly/);
  });

  it('reports health and an idle status before any session', async () => {
    expect(await get('/health')).toMatchObject({ status: 200, body: { status: 'ok', components: expect.arrayContaining([expect.objectContaining({ name: 'database', status: 'up' })]) } });
    expect(await get('/api/status')).toMatchObject({ status: 200, body: { state: 'idle', sessionId: null, round: 0 } });
    expect(await post('/api/training/pause')).toMatchObject({ status: 409, body: { error: { code: 'CONFLICT' } } });
  });

  it('rejects bad start bodies with 400 and the reason', async () => {
    const badModel = await post('/api/training/start', JSON.stringify({ model: 'transformer' }));
    expect(badModel.status).toBe(400);
    expect(badModel.body.error.message).toMatch(/model/);
    const notJson = await post('/api/training/start', '{"model":');
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.message).toMatch(/not valid JSON/);
    const unknownField = await post('/api/training/start', JSON.stringify({ epochs: 3 }));
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.error.message).toMatch(/epochs/);
    const badLr = await post('/api/training/start', JSON.stringify({ learningRate: -1 }));
    expect(badLr.status).toBe(400);
    expect((await get('/api/status')).body.state).toBe('idle');
  });

  it('starts a session that the agent trains, and serves nodes and metrics', async () => {
    const started = await post('/api/training/start', JSON.stringify({ model: 'mlp', optimizer: 'sgd', learningRate: 0.05, batchSize: 64, rounds: 100000, evalEvery: 5 }));
    expect(started.status).toBe(201);
    expect(started.body).toMatchObject({ state: 'running', config: { model: 'mlp', batchSize: 64, optimizer: { name: 'sgd', learningRate: 0.05 } } });
    expect((await post('/api/training/start', '{}')).status).toBe(409);

    await eventually(round, (r) => r >= 6, 120_000, 'six rounds');
    const nodes = await get('/api/nodes');
    expect(nodes.body.nodes).toHaveLength(1);
    const node = nodes.body.nodes[0];
    expect(node).toMatchObject({ name: 'local-1', capabilities: { backend: 'wasm' } });
    expect(node.acceptedContributions).toBeGreaterThan(0);
    expect((await get(`/api/nodes/${node.id}`)).body).toMatchObject({ id: node.id, name: 'local-1' });
    expect(await get('/api/nodes/9999')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    // By name too, as the table shows it; a name nobody has is a 404, a malformed id a 400.
    expect((await get('/api/nodes/local-1')).body).toMatchObject({ id: node.id, name: 'local-1' });
    expect((await get('/api/nodes/abc')).status).toBe(404);
    expect((await get('/api/nodes/0')).status).toBe(400);

    // An evaluation after 20 rounds (1,280 samples of SGD with momentum): the model has learned, not guessed.
    const metrics = await eventually(
      () => get('/api/metrics'),
      (m) => m.body.accuracy !== null && m.body.history.some((p: { round: number; testAccuracy: number | null }) => p.round >= 20 && p.testAccuracy !== null),
      60_000,
      'an evaluation after round 20',
    );
    expect(metrics.body.round).toBeGreaterThanOrEqual(20);
    expect(metrics.body.loss).toBeGreaterThan(0);
    expect(metrics.body.samples).toBe(metrics.body.history.reduce((s: number, m: { samples: number }) => s + m.samples, 0));
    expect(metrics.body.samplesPerSecond).toBeGreaterThan(0);
    expect(metrics.body.accuracy).toBeGreaterThan(0.5); // chance is 0.1
    const recent = await get(`/api/metrics?limit=2`);
    expect(recent.body.history.map((m: { round: number }) => m.round)).toEqual([recent.body.round - 1, recent.body.round]);
    const since = await get(`/api/metrics?since=3&limit=2`);
    expect(since.body.history.map((m: { round: number }) => m.round)).toEqual([4, 5]);
    expect((await get('/api/metrics?limit=0')).status).toBe(400);
  });

  it('serves tRPC queries over HTTP at /trpc', async () => {
    const res = await fetch(`${server.baseUrl}/trpc/training.status`);
    const body = (await res.json()) as any;
    expect(res.status).toBe(200);
    expect(body.result.data).toMatchObject({ state: 'running' });
    const missing = await fetch(`${server.baseUrl}/trpc/nodes.byId?input=${encodeURIComponent(JSON.stringify({ id: 4242 }))}`);
    expect(missing.status).toBe(404);
  });

  it('pauses (the round counter stops), resumes (it moves again) and stops', async () => {
    expect((await post('/api/training/pause')).body.state).toBe('paused');
    // The round in flight may still close; after that nothing moves.
    const settled = await eventually(
      async () => {
        const before = await round();
        await new Promise((r) => setTimeout(r, 700));
        return [before, await round()];
      },
      ([a, b]) => a === b,
      20_000,
      'the round counter to stop',
    );
    expect((await get('/api/status')).body.state).toBe('paused');
    expect((await post('/api/training/resume')).body.state).toBe('running');
    await eventually(round, (r) => r > settled[1], 30_000, 'rounds after resume');
    const stopped = await post('/api/training/stop');
    expect(stopped.body.state).toBe('stopped');
    expect((await post('/api/training/stop')).status).toBe(409);
    const sessions = await get('/api/sessions');
    expect(sessions.body.sessions[0]).toMatchObject({ state: 'stopped' });
    const contributions = await get(`/api/sessions/${stopped.body.id}/contributions`);
    expect(contributions.body.contributions.length).toBeGreaterThanOrEqual(stopped.body.round - 1);
  });

  it('answers unknown paths with 404 and wrong methods with 405', async () => {
    expect((await get('/api/nope')).status).toBe(404);
    const res = await fetch(`${server.baseUrl}/api/status`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect((await get('/api/sessions/77')).status).toBe(404);
  });
});
