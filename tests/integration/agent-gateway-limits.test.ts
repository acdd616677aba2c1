// The gateway's limits on real sockets, with a stub channel behind it (no coordinator): the per-socket frame
// cap raised at registration (ws 8's receiver field), the byte-rate bucket, the hello timeout, the slow-reader
// bound and sanitized text in what reaches the log.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createAgentGateway, gatewayLimits, type AgentGateway, type AgentGatewayOptions } from '../../src/server/adapters/agent-gateway';
import type { AgentChannelHandler, AgentLink } from '../../src/server/core/agent-protocol';

const capabilities = { backend: 'test', device: 'stub', samplesPerSecond: 1, agentVersion: 'test', hostname: 'test' };
const hello = JSON.stringify({ v: 1, type: 'hello', name: 'stub-node', capabilities });

interface Harness {
  url: string;
  links: AgentLink[];
  logs: string[];
  closed: string[];
  frames: number;
}

let server: Server | null = null;
let gateway: AgentGateway | null = null;

afterEach(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
  gateway = null;
});

async function start(overrides: Partial<AgentGatewayOptions>): Promise<Harness> {
  const h: Harness = { url: '', links: [], logs: [], closed: [], frames: 0 };
  const handler: AgentChannelHandler = {
    connected: (_c, link) => void h.links.push(link),
    hello: async () => 1,
    ready: () => undefined,
    heartbeat: () => undefined,
    frame: () => void h.frames++,
    closed: (_c, _n, reason) => void h.closed.push(reason),
    protocolError: (_n, message) => void h.logs.push(message),
  };
  gateway = createAgentGateway(handler, gatewayLimits(100_000, overrides));
  server = createServer();
  server.on('upgrade', (req, socket, head) => gateway!.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()));
  h.url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/agent`;
  return h;
}

function open(url: string): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('error', reject);
  });
}

const until = async (check: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('agent gateway limits', () => {
  it('refuses a frame over the pre-hello cap, and accepts one of model size once registered', async () => {
    const h = await start({ preHelloFrameBytes: 1024 });
    const early = await open(h.url);
    early.ws.send(Buffer.alloc(2048), { binary: true });
    expect((await early.closed).code).toBe(1009);

    const registered = await open(h.url);
    registered.ws.send(hello);
    await until(() => h.logs.length >= 1 || h.links.length >= 2);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the hello resolves, the cap is raised
    registered.ws.send(Buffer.alloc(90_000), { binary: true });
    await until(() => h.frames === 1);
    registered.ws.send(Buffer.alloc(150_000), { binary: true }); // over the model-sized cap of 100,000
    expect((await registered.closed).code).toBe(1009);
  });

  it('closes a connection that overdraws its byte-rate bucket', async () => {
    const h = await start({ bytesPerSecond: 100_000, burstBytes: 300_000 });
    const c = await open(h.url);
    c.ws.send(hello);
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 0; i < 5; i++) c.ws.send(Buffer.alloc(90_000), { binary: true });
    const { code, reason } = await c.closed;
    expect(code).toBe(4008);
    expect(reason).toContain('RATE_LIMITED');
    expect(h.frames).toBe(3);
  });

  it('closes a connection that sends no hello within the timeout, with a reason', async () => {
    const h = await start({ helloTimeoutMs: 300 });
    const c = await open(h.url);
    const { code, reason } = await c.closed;
    expect(code).toBe(4012);
    expect(reason).toContain('HELLO_TIMEOUT');
    await until(() => h.closed.some((r) => r.includes('no hello within 300 ms')));
  });

  it('terminates a peer that does not read once its unsent data passes the bound', async () => {
    const h = await start({ maxBufferedBytes: 1024 * 1024 });
    const c = await open(h.url);
    c.ws.send(hello);
    await new Promise((resolve) => setTimeout(resolve, 100));
    c.ws.pause();
    const link = h.links[0];
    const frame = new Uint8Array(100_000);
    for (let i = 0; i < 400 && h.closed.length === 0; i++) {
      link.sendBinary(frame);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await until(() => h.closed.length === 1);
    expect(h.closed[0]).toMatch(/slow reader: \d+ bytes queued unread \(bound 1048576\)/);
    c.ws.terminate();
  });

  it('replaces control characters in a goodbye reason before it reaches the log', async () => {
    const h = await start({});
    const c = await open(h.url);
    c.ws.send(hello);
    await new Promise((resolve) => setTimeout(resolve, 100));
    c.ws.send(JSON.stringify({ v: 1, type: 'goodbye', reason: 'bye\u001b[2J\u001b[31mforged\nline' }));
    await until(() => h.closed.length >= 1);
    expect(h.closed[0]).toContain('bye\uFFFD[2J\uFFFD[31mforged\uFFFDline');
    expect(h.closed.join('')).not.toMatch(/[\u0000-\u001f]/);
  });
});

describe('agent gateway close reasons', () => {
  it('closes with a reason cut to 123 bytes even when it quotes multi-byte text', async () => {
    const h = await start({});
    const c = await open(h.url);
    // ws throws on a close reason over 123 bytes; 200 two-byte characters would be 400.
    h.links[0].close(4002, '\u00e9'.repeat(200));
    const { code, reason } = await c.closed;
    expect(code).toBe(4002);
    expect(Buffer.byteLength(reason)).toBeLessThanOrEqual(123);
  });
});
