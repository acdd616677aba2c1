// The agent's connection against a tiny in-process coordinator: hello with token, validation of what comes
// back (bad input logged and ignored, another protocol version drops the link), heartbeats, reconnect, goodbye.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { AgentConnection, type ControlMessage } from '../../src/agent/connection';
import type { ModelFrame } from '../../src/agent/inbound';
import { TokenStore } from '../../src/agent/token-store';
import { encodeFrame, FrameKind } from '../../src/protocol/frame';

interface Peer {
  ws: WebSocket;
  received: any[];
  next(type: string): Promise<any>;
}

async function coordinator() {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const peers: Peer[] = [];
  const arrivals: ((p: Peer) => void)[] = [];
  wss.on('connection', (ws) => {
    const received: any[] = [];
    const waiters: (() => void)[] = [];
    ws.on('message', (data, isBinary) => {
      if (!isBinary) received.push(JSON.parse(data.toString()));
      waiters.splice(0).forEach((w) => w());
    });
    const peer: Peer = {
      ws,
      received,
      next: (type) =>
        new Promise((resolve) => {
          const check = () => {
            const m = received.find((r) => r.type === type);
            if (m) {
              received.splice(received.indexOf(m), 1);
              resolve(m);
            } else waiters.push(check);
          };
          check();
        }),
    };
    peers.push(peer);
    arrivals.splice(0).forEach((a) => a(peer));
  });
  const port = (wss.address() as { port: number }).port;
  return {
    url: `ws://127.0.0.1:${port}/agent`,
    peers,
    nextPeer: (index: number) => (peers[index] ? Promise.resolve(peers[index]) : new Promise<Peer>((resolve) => arrivals.push((p) => peers[index] && resolve(peers[index])))),
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}

const session = { sessionId: 3, model: 'mlp', dataset: 'mnist', seed: 7, paramCount: 4 };
let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function until(check: () => boolean, what: string, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function agent(url: string, tokenFile: string | null = null, coordinatorTimeoutMs?: number) {
  const logs: string[] = [];
  const controls: ControlMessage[] = [];
  const frames: ModelFrame[] = [];
  const welcomes: number[] = [];
  const connection = new AgentConnection(
    {
      url,
      name: 'node-a',
      log: (l) => logs.push(l),
      tokens: new TokenStore(tokenFile, () => {}),
      capabilities: () => ({ backend: 'test', device: 'test', samplesPerSecond: 100, agentVersion: 'test', hostname: 'test' }),
      currentRound: () => 6,
      minBackoffMs: 20,
      maxBackoffMs: 40,
      coordinatorTimeoutMs,
    },
    { onWelcome: (w) => welcomes.push(w.nodeId), onControl: (m) => controls.push(m), onModelFrame: (f) => frames.push(f) },
  );
  cleanup.push(() => connection.stop('test over'));
  return { connection, logs, controls, frames, welcomes };
}

describe('agent connection', () => {
  it('registers, ignores what does not validate, and passes on what does', async () => {
    const server = await coordinator();
    cleanup.push(server.close);
    const a = agent(server.url);
    a.connection.start();
    const peer = await server.nextPeer(0);
    const hello = await peer.next('hello');
    expect(hello).toMatchObject({ v: 1, name: 'node-a', capabilities: { samplesPerSecond: 100 } });
    expect(hello.token).toBeUndefined();

    peer.ws.send('{"v":1,"type":"assignment","assignment":{"round":-1}}');
    peer.ws.send('garbage');
    peer.ws.send(encodeFrame({ kind: FrameKind.Gradient, sessionId: 3, round: 1, nodeId: 1, attempt: 0, modelVersion: 1, sampleCount: 1, trainLoss: 1 }, new Float32Array(4)));
    peer.ws.send(JSON.stringify({ v: 1, type: 'welcome', nodeId: 9, heartbeatMs: 25, session, token: 'k'.repeat(24) }));
    const model = encodeFrame({ kind: FrameKind.Model, sessionId: 3, round: 1, nodeId: 0, attempt: 0, modelVersion: 1, sampleCount: 0, trainLoss: Number.NaN }, Float32Array.of(1, 2, 3, 4));
    peer.ws.send(model);
    peer.ws.send(JSON.stringify({ v: 1, type: 'cancel', round: 1, reason: 'test' }));
    await until(() => a.controls.length === 1 && a.frames.length === 1, 'the valid messages');
    expect(a.welcomes).toEqual([9]);
    expect(a.connection.nodeId).toBe(9);
    expect(a.controls).toEqual([{ v: 1, type: 'cancel', round: 1, reason: 'test' }]);
    expect(Array.from(a.frames[0].values)).toEqual([1, 2, 3, 4]);
    expect(a.logs.filter((l) => /ignored$/.test(l))).toEqual([
      expect.stringMatching(/invalid control message \(BAD_MESSAGE\): assignment\./),
      expect.stringMatching(/not JSON/),
      expect.stringMatching(/expected a model frame from the coordinator, got a Gradient frame/),
    ]);
    // Heartbeats at the interval the welcome asked for, with the round in progress.
    expect(await peer.next('heartbeat')).toMatchObject({ round: 6 });
    await a.connection.stop('bye now');
    expect(await peer.next('goodbye')).toMatchObject({ reason: 'bye now' });
  });

  it('drops a link that speaks another protocol version and comes back with its token', async () => {
    const server = await coordinator();
    cleanup.push(server.close);
    const tokenFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'hypergpu-conn-')), 'node.token');
    const a = agent(server.url, tokenFile);
    a.connection.start();
    const first = await server.nextPeer(0);
    await first.next('hello');
    first.ws.send(JSON.stringify({ v: 1, type: 'welcome', nodeId: 4, heartbeatMs: 1000, session: null, token: 'z'.repeat(32) }));
    await until(() => a.welcomes.length === 1, 'the welcome');
    first.ws.send(JSON.stringify({ v: 2, type: 'welcome', nodeId: 4 }));
    const second = await server.nextPeer(1);
    expect((await second.next('hello')).token).toBe('z'.repeat(32));
    expect(a.logs.join('\n')).toMatch(/PROTOCOL_VERSION.*dropping the connection\n.*disconnected \(.*peer speaks protocol 2.*\); reconnecting in \d+ ms/);
    expect(a.connection.nodeId).toBeNull();
  });

  it('reconnects with backoff when the coordinator is gone, and cuts a silent link', async () => {
    const server = await coordinator();
    const a = agent(server.url, null, 200);
    a.connection.start();
    const peer = await server.nextPeer(0);
    await peer.next('hello');
    // A coordinator that stops answering pings: the watchdog cuts the link after 200 ms (or 3 heartbeats).
    peer.ws.send(JSON.stringify({ v: 1, type: 'welcome', nodeId: 1, heartbeatMs: 20, session: null }));
    (peer.ws as any)._socket.pause();
    await until(() => a.logs.some((l) => /coordinator silent for \d+ ms; dropping the connection/.test(l)), 'the watchdog', 8000);
    await server.close();
    await until(() => a.logs.filter((l) => /cannot reach coordinator .*reconnecting in \d+ ms/.test(l)).length >= 2, 'reconnect attempts');
  });
});
