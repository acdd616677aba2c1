// The console's REST endpoints against the real server and two real agents: config, session summaries, a
// node's activity by name, the round timeline, kicking a node (disconnected, no further credit in the session)
// and banning an address (its agents' sockets closed and refused).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, OPERATOR_HEADERS, startServer, waitForHttp, type ServerProcess } from '../support/server-process';

describe('console API', () => {
  let server: ServerProcess;
  const get = async (path: string) => {
    const res = await fetch(`${server.baseUrl}${path}`);
    return { status: res.status, body: (await res.json()) as any };
  };
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${server.baseUrl}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { ...OPERATOR_HEADERS, 'content-type': 'application/json' } });
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    server = await startServer(['--no-dashboard', '--no-session', '--nodes', '2']);
    await waitForHttp(`${server.baseUrl}/health`);
  });

  afterAll(async () => {
    expect(await server?.stop('SIGTERM')).toBe(0);
  });

  it('describes what a session may be, and lists sessions with their best accuracy', async () => {
    const config = (await get('/api/config')).body;
    expect(config).toMatchObject({ models: ['mlp', 'cnn', 'mlp2nn'], datasets: ['mnist'], defaults: { model: 'mlp', dataset: 'mnist' }, bounds: { maxUpdateNorm: 10_000 } });
    const started = await post('/api/training/start', { model: 'mlp', optimizer: 'sgd', learningRate: 0.05, batchSize: 64, evalEvery: 5 });
    expect(started.status).toBe(201);
    await eventually(() => get('/api/status'), (s) => s.body.round >= 12, 120_000, '12 rounds');
    // The evaluator starts with the session's first evaluation (round 5), so its first result can trail the rounds.
    const summaries = await eventually(async () => (await get('/api/sessions/summaries')).body.sessions, (list) => list[0]?.bestTestAccuracy !== null, 120_000, 'an evaluation in the summary');
    expect(summaries[0]).toMatchObject({ session: { id: started.body.id, state: 'running' }, bestTestAccuracy: expect.any(Number) });
    expect(summaries[0].evaluations).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it('serves a node’s activity by name and the round timeline', async () => {
    const activity = (await get('/api/nodes/local-1/activity')).body;
    expect(activity.node.name).toBe('local-1');
    expect(activity.accepted).toBeGreaterThan(0);
    const row = activity.contributions.find((c: any) => c.status === 'applied');
    expect(row.latencyMs).toBeGreaterThan(0);
    expect(row.samplesPerSecond).toBeGreaterThan(0);
    const sessionId = (await get('/api/status')).body.sessionId;
    const rounds = (await get(`/api/sessions/${sessionId}/round-timeline?rounds=10`)).body.rounds;
    expect(rounds.length).toBe(10);
    for (const r of rounds) {
      expect(r.durationMs).toBeGreaterThanOrEqual(0);
      expect(r.deadlineMs).toBeGreaterThanOrEqual(1000);
      for (const a of r.arrivals) expect(a.atMs).toBeLessThanOrEqual(r.durationMs + 50);
    }
    expect(rounds.some((r: any) => r.arrivals.length === 2)).toBe(true);
    expect((await get(`/api/sessions/${sessionId}/round-timeline?rounds=0`)).status).toBe(400);
  });

  it('kicks a node: disconnected at once, no further credit in this session', async () => {
    expect((await post('/api/nodes/nobody/kick', {})).status).toBe(404);
    const kicked = await post('/api/nodes/local-2/kick', { reason: 'integration test' });
    expect(kicked.status).toBe(200);
    expect(kicked.body).toMatchObject({ name: 'local-2', status: 'failed', statusReason: expect.stringMatching(/kicked by the operator: integration test/) });
    // An update it delivered before the kick may still commit with its round; nothing after that.
    const kickedAt = (await get('/api/status')).body.round;
    await eventually(() => get('/api/status'), (s) => s.body.round >= kickedAt + 2, 60_000, 'the round in flight closed');
    const credited = (await get('/api/nodes/local-2')).body.acceptedContributions;
    const round = (await get('/api/status')).body.round;
    await eventually(() => get('/api/status'), (s) => s.body.round >= round + 10, 60_000, '10 more rounds');
    const later = (await get('/api/nodes/local-2')).body;
    expect(later.acceptedContributions).toBe(credited);
    expect(later.status).not.toBe('training');
    expect((await get('/api/nodes/local-1')).body.status).toMatch(/training|idle/);
  }, 120_000);

  it('bans an address: its agent sockets are closed and it cannot reconnect', async () => {
    expect((await post('/api/bans', { address: 'not-an-ip', seconds: 60 })).status).toBe(400);
    const ban = await post('/api/bans', { address: '127.0.0.1', seconds: 60, reason: 'integration test' });
    expect(ban).toMatchObject({ status: 200, body: { address: '127.0.0.1' } });
    expect(ban.body.closedConnections).toBeGreaterThanOrEqual(1);
    await eventually(() => get('/api/nodes'), (n) => n.body.nodes.every((node: any) => node.status !== 'training' && node.status !== 'idle'), 30_000, 'no node connected');
    await new Promise((r) => setTimeout(r, 1500)); // agents retry with backoff; none gets back in
    expect((await get('/api/nodes')).body.nodes.every((node: any) => node.status !== 'training' && node.status !== 'idle')).toBe(true);
  }, 60_000);
});
