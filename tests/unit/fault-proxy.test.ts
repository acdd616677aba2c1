// The fault-injecting proxy used by the chaos harness, against a tiny local echo server.
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createFaultProxy, type FaultProxy } from '../support/fault-proxy';

interface Client {
  socket: net.Socket;
  received(): string;
  waitFor(text: string, timeoutMs?: number): Promise<number>;
  closed: Promise<void>;
}

async function connect(port: number): Promise<Client> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.setNoDelay(true);
  let data = '';
  const waiters = new Set<() => void>();
  socket.on('data', (chunk: Buffer) => {
    data += chunk.toString('utf8');
    for (const w of [...waiters]) w();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return {
    socket,
    received: () => data,
    closed,
    waitFor(text, timeoutMs = 3000) {
      return new Promise<number>((resolve, reject) => {
        const check = () => {
          if (data.includes(text)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(Date.now());
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no "${text}" within ${timeoutMs} ms; got "${data}"`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const within = (promise: Promise<unknown>, ms: number) =>
  Promise.race([promise.then(() => true), sleep(ms).then(() => false)]);

describe('fault proxy', () => {
  let echo: net.Server;
  let echoPort: number;
  let echoConnections: net.Socket[];
  let proxy: FaultProxy;
  const clients: Client[] = [];

  beforeEach(async () => {
    echoConnections = [];
    echo = net.createServer((socket) => {
      echoConnections.push(socket);
      socket.on('error', () => undefined);
      socket.on('data', (chunk) => socket.write(chunk));
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', () => resolve()));
    echoPort = (echo.address() as net.AddressInfo).port;
    proxy = await createFaultProxy({ targetPort: echoPort });
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    await proxy.close();
    for (const s of echoConnections) s.destroy();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  const open = async () => {
    const c = await connect(proxy.port);
    clients.push(c);
    return c;
  };

  it('passes bytes through both ways and tracks the connection', async () => {
    const c = await open();
    c.socket.write('hello');
    await c.waitFor('hello');
    c.socket.write(' world');
    await c.waitFor('hello world');
    const [info] = proxy.connections();
    expect(info.upstream).toBe(true);
    expect(info.bytesUp).toBe(11);
    expect(info.bytesDown).toBe(11);
    expect(proxy.accepted).toBe(1);
  });

  it('passes a large transfer intact', async () => {
    const c = await open();
    const big = 'x'.repeat(2_000_000) + 'END';
    c.socket.write(big);
    await c.waitFor('END', 10_000);
    expect(c.received().length).toBe(big.length);
  });

  it('adds at least the configured one-way latency in each direction and keeps order', async () => {
    const c = await open();
    c.socket.write('warm');
    await c.waitFor('warm');
    proxy.setLatency(150);
    const sent = Date.now();
    for (let i = 0; i < 20; i++) c.socket.write(`<${i}>`);
    const arrived = await c.waitFor('<19>');
    // Round trip through the proxy twice: client -> echo and echo -> client, each delayed.
    expect(arrived - sent).toBeGreaterThanOrEqual(300);
    expect(arrived - sent).toBeLessThan(1500);
    expect(c.received()).toBe('warm' + Array.from({ length: 20 }, (_, i) => `<${i}>`).join(''));
    proxy.setLatency(0);
    const again = Date.now();
    c.socket.write('fast');
    expect((await c.waitFor('fast')) - again).toBeLessThan(100);
  });

  it('blackhole: keeps the socket open but nothing gets through either way; new connections hang', async () => {
    const c = await open();
    c.socket.write('a');
    await c.waitFor('a');
    proxy.setMode('blackhole');
    c.socket.write('b');
    // And the far side pushing on its own is not delivered either.
    echoConnections[0].write('c');
    await sleep(300);
    expect(c.received()).toBe('a');
    expect(c.socket.destroyed).toBe(false);
    expect(proxy.connections()[0].bytesDiscarded).toBeGreaterThanOrEqual(2);

    const late = await open();
    late.socket.write('d');
    await sleep(200);
    expect(late.received()).toBe('');
    expect(late.socket.destroyed).toBe(false);
    expect(proxy.connections().find((x) => !x.upstream)).toBeDefined();
    expect(echoConnections.length).toBe(1); // never connected upstream
  });

  it('blackhole hides a close, and healing resets the connections it broke', async () => {
    const c = await open();
    c.socket.write('a');
    await c.waitFor('a');
    proxy.setMode('blackhole');
    const late = await open();
    echoConnections[0].destroy(); // the server side goes away during the partition
    expect(await within(c.closed, 300)).toBe(false);
    proxy.heal();
    expect(await within(c.closed, 1000)).toBe(true);
    expect(await within(late.closed, 1000)).toBe(true);
    // A new connection after the heal works.
    const fresh = await open();
    fresh.socket.write('again');
    await fresh.waitFor('again');
  });

  it('an intact connection resumes after a heal', async () => {
    const c = await open();
    c.socket.write('a');
    await c.waitFor('a');
    proxy.setMode('blackhole');
    c.socket.write('lost');
    await sleep(100);
    proxy.heal();
    c.socket.write('b');
    await c.waitFor('ab');
    expect(c.received()).toBe('ab');
  });

  it('drop: closes current connections and refuses new ones until healed', async () => {
    const c = await open();
    c.socket.write('a');
    await c.waitFor('a');
    proxy.setMode('drop');
    expect(await within(c.closed, 1000)).toBe(true);
    expect(proxy.connections()).toHaveLength(0);
    const refused = net.connect({ port: proxy.port, host: '127.0.0.1' });
    refused.on('error', () => undefined);
    expect(await within(new Promise((resolve) => refused.once('close', resolve)), 1000)).toBe(true);

    proxy.heal();
    const d = await open();
    d.socket.write('back');
    await d.waitFor('back');
  });

  it('passes the close of either side on', async () => {
    const c = await open();
    c.socket.write('a');
    await c.waitFor('a');
    echoConnections[0].destroy();
    expect(await within(c.closed, 1000)).toBe(true);

    const d = await open();
    d.socket.write('b');
    await d.waitFor('b');
    const server = echoConnections[1];
    const serverClosed = new Promise((resolve) => server.once('close', resolve));
    d.socket.destroy();
    expect(await within(serverClosed, 1000)).toBe(true);
  });

  it('closes the client when the target is not listening', async () => {
    const dead = await createFaultProxy({ targetPort: 1 });
    try {
      const c = await connect(dead.port);
      expect(await within(c.closed, 2000)).toBe(true);
    } finally {
      await dead.close();
    }
  });

  it('carries a WebSocket conversation, delayed by the latency', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
    const wsProxy = await createFaultProxy({ targetPort: (wss.address() as net.AddressInfo).port });
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${wsProxy.port}/`);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      const roundTrip = (payload: Buffer) =>
        new Promise<{ ms: number; data: Buffer }>((resolve) => {
          const started = Date.now();
          ws.once('message', (data: Buffer) => resolve({ ms: Date.now() - started, data }));
          ws.send(payload);
        });
      const payload = Buffer.alloc(300_000, 7);
      expect((await roundTrip(payload)).data.equals(payload)).toBe(true);
      wsProxy.setLatency(100);
      const slow = await roundTrip(Buffer.from('ping'));
      expect(slow.ms).toBeGreaterThanOrEqual(200);
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      wsProxy.setMode('drop');
      expect(await closed).toBe(1006);
    } finally {
      await wsProxy.close();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
  });
});
