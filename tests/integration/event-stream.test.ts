// /ws against the real server: a plain WebSocket client (no tRPC) gets the status first, then a metric event per
// committed round while the agent trains; the stream is read-only, guarded like the other upgrades, and capped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { eventually, OPERATOR_HEADERS, startServer, waitForHttp, type ServerProcess } from '../support/server-process';

interface Client {
  ws: WebSocket;
  messages: any[];
  closed: Promise<{ code: number; reason: string }>;
}

function connect(url: string, headers: Record<string, string> = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const messages: any[] = [];
    ws.on('message', (data) => messages.push(JSON.parse(String(data))));
    const closed = new Promise<{ code: number; reason: string }>((done) => ws.on('close', (code, reason) => done({ code, reason: String(reason) })));
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused with ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

describe('/ws event stream', () => {
  let server: ServerProcess;
  const wsUrl = () => server.baseUrl.replace(/^http/, 'ws') + '/ws';

  beforeAll(async () => {
    server = await startServer(['--no-dashboard', '--no-session', '--nodes', '1']);
    await waitForHttp(`${server.baseUrl}/health`);
  });

  afterAll(async () => {
    expect(await server?.stop('SIGTERM')).toBe(0);
  });

  it('sends the status, then a metric event as each round commits', async () => {
    const client = await connect(wsUrl());
    await eventually(async () => client.messages.length, (n) => n >= 1, 10_000, 'the first message');
    expect(client.messages[0]).toMatchObject({ type: 'status', status: { state: 'idle', round: 0 } });

    const start = await fetch(`${server.baseUrl}/api/training/start`, {
      method: 'POST',
      headers: { ...OPERATOR_HEADERS, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mlp', rounds: 100000 }),
    });
    expect(start.status).toBe(201);
    const metrics = () => client.messages.filter((m) => m.type === 'metric');
    await eventually(async () => metrics().length, (n) => n >= 3, 120_000, 'three metric events');
    const rounds = [...new Set(metrics().map((m) => m.metric.round))];
    expect(rounds.slice(0, 3)).toEqual([1, 2, 3]);
    expect(metrics()[0]).toMatchObject({ type: 'metric', sessionId: 1, metric: { round: 1, samples: expect.any(Number), roundDurationMs: expect.any(Number) } });
    expect(client.messages.some((m) => m.type === 'status' && m.status.state === 'running')).toBe(true);
    expect(client.messages.some((m) => m.type === 'node')).toBe(true);
    expect(client.messages.some((m) => m.type === 'log')).toBe(false);
    client.ws.close();
  }, 180_000);

  it('is read-only: a client message closes the socket with 1008', async () => {
    const client = await connect(wsUrl());
    client.ws.send('{"subscribe":"everything"}');
    expect((await client.closed).code).toBe(1008);
  });

  it('refuses an upgrade from another site’s page, as the other sockets do', async () => {
    await expect(connect(wsUrl(), { origin: 'https://evil.example' })).rejects.toThrow(/403/);
  });
});
