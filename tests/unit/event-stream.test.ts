// The /ws event stream's bounds, on an in-process server: a cap on sockets (more are refused before the
// handshake), a slow reader closed rather than buffered for, private reads honoured, events fanned out as JSON.
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createEventStream, EVENT_STREAM_CLOSE, type EventStream } from '../../src/server/adapters/event-stream';
import type { Caller } from '../../src/server/core/operator-access';
import { createFakeControl, fakeMetric } from '../support/fake-control';

let server: Server | null = null;
let stream: EventStream | null = null;

afterEach(async () => {
  stream?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
});

async function serve(options: Parameters<typeof createEventStream>[1], caller: Caller = { kind: 'anonymous' }, privateReads = false) {
  const control = createFakeControl();
  stream = createEventStream(control, options);
  server = createServer();
  server.on('upgrade', (req, socket, head) => stream!.handleUpgrade(req, socket, head, caller, privateReads));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { control, url: `ws://127.0.0.1:${address.port}/ws` };
}

function open(url: string): Promise<{ ws: WebSocket; messages: any[]; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const messages: any[] = [];
    ws.on('message', (data) => messages.push(JSON.parse(String(data))));
    const closed = new Promise<number>((done) => ws.on('close', (code) => done(code)));
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused with ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
};

describe('/ws event stream', () => {
  it('fans events out as JSON, status first, without log lines', async () => {
    const { control, url } = await serve({});
    const a = await open(url);
    const b = await open(url);
    await until(() => a.messages.length === 1 && b.messages.length === 1);
    expect(a.messages[0]).toMatchObject({ type: 'status', status: { state: 'idle' } });
    control.events.publish({ type: 'log', line: { at: 1, level: 'info', message: 'not streamed' } });
    control.events.publish({ type: 'metric', sessionId: 1, metric: { ...fakeMetric(7), trainLoss: NaN } });
    await until(() => a.messages.length === 2 && b.messages.length === 2);
    expect(a.messages[1]).toMatchObject({ type: 'metric', sessionId: 1, metric: { round: 7, trainLoss: null } });
    a.ws.close();
    b.ws.close();
  });

  it('refuses sockets over the cap with 503 before the handshake', async () => {
    const { url } = await serve({ maxClients: 2 });
    const a = await open(url);
    await open(url);
    await expect(open(url)).rejects.toThrow(/503/);
    a.ws.close();
    await a.closed;
    await until(() => stream!.clients === 1);
    await open(url); // a place freed
  });

  it('closes a slow reader with 4011 instead of buffering for it', async () => {
    const { url } = await serve({ maxBufferedBytes: 16 }); // the status alone is larger
    const client = await open(url);
    expect(await client.closed).toBe(EVENT_STREAM_CLOSE.slowReader);
    expect(stream!.clients).toBe(0);
  });

  it('needs the operator credential when reads are private', async () => {
    const { url } = await serve({}, { kind: 'anonymous' }, true);
    await expect(open(url)).rejects.toThrow(/401/);
  });
});
