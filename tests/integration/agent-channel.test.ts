// Hostile and broken input on the agent channel, sent by a raw WebSocket client to the real server.
// Each case must get a clear error back, be recorded, and leave the coordinator running.
import path from 'node:path';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Assignment } from '../../src/server/core/types';
import { encodeFrame, FrameKind } from '../../src/protocol/frame';
import { eventually, startServer, waitForHttp, type ServerProcess, OPERATOR_HEADERS } from '../support/server-process';

interface Client {
  ws: WebSocket;
  messages: any[];
  binary: Buffer[];
  closed: Promise<{ code: number; reason: string }>;
  next(type: string, timeoutMs?: number): Promise<any>;
}

async function connect(url: string): Promise<Client> {
  const ws = new WebSocket(url);
  const messages: any[] = [];
  const binary: Buffer[] = [];
  let seen = 0;
  const waiters: (() => void)[] = [];
  ws.on('message', (data: Buffer, isBinary) => {
    if (isBinary) binary.push(data);
    else messages.push(JSON.parse(data.toString()));
    waiters.splice(0).forEach((w) => w());
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    messages,
    binary,
    closed,
    async next(type: string, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const index = messages.findIndex((m, i) => i >= seen && m.type === type);
        if (index >= 0) {
          seen = index + 1;
          return messages[index];
        }
        if (Date.now() > deadline) throw new Error(`no ${type} message; got ${JSON.stringify(messages.slice(seen))}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
  };
}

const hello = (name: string, extra: object = {}) =>
  JSON.stringify({ v: 1, type: 'hello', name, capabilities: { backend: 'test', device: 'raw client', samplesPerSecond: 1, agentVersion: 'test', hostname: 'test' }, ...extra });

describe('agent channel under hostile input', () => {
  let server: ServerProcess;
  let url: string;

  beforeAll(async () => {
    server = await startServer(['--no-dashboard', '--no-session', '--nodes', '0'], { env: { HYPERGPU_MAX_FRAME_MB: '1' } });
    await waitForHttp(`${server.baseUrl}/health`);
    url = `ws://127.0.0.1:${server.port}/agent`;
    const res = await fetch(`${server.baseUrl}/api/training/start`, {
      method: 'POST',
      body: JSON.stringify({ batchSize: 32, roundTimeoutMs: 60_000 }),
      headers: { ...OPERATOR_HEADERS, 'content-type': 'application/json' },
    });
    expect(res.status).toBe(201);
  });

  afterAll(async () => {
    await server?.stop();
  });

  const healthy = async () => expect((await fetch(`${server.baseUrl}/health`)).status).toBe(200);

  it('closes a connection that sends a binary frame before hello', async () => {
    const c = await connect(url);
    c.ws.send(new Uint8Array(100));
    expect((await c.next('error')).code).toBe('NOT_REGISTERED');
    expect((await c.closed).code).toBe(4002);
    await healthy();
  });

  it('answers malformed control messages with a reason and keeps the connection', async () => {
    const c = await connect(url);
    c.ws.send('not json at all');
    expect((await c.next('error')).code).toBe('BAD_MESSAGE');
    c.ws.send(JSON.stringify({ v: 1, type: 'hello', name: 'bad name with spaces', capabilities: {} }));
    const error = await c.next('error');
    expect(error.code).toBe('BAD_MESSAGE');
    expect(error.message).toMatch(/name/);
    c.ws.send(JSON.stringify({ v: 1, type: 'launch-missiles' }));
    expect((await c.next('error')).code).toBe('BAD_MESSAGE');
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    c.ws.close();
  });

  it('closes an agent that speaks another protocol version, telling it to upgrade', async () => {
    const c = await connect(url);
    c.ws.send(hello('future-agent', { v: 2 }));
    const error = await c.next('error');
    expect(error).toMatchObject({ code: 'PROTOCOL_VERSION' });
    expect(error.message).toMatch(/upgrade/);
    expect((await c.closed).code).toBe(4002);
  });

  it('rejects broken updates with a reason each, accepts a good one once, and records the rejections', async () => {
    const c = await connect(url);
    c.ws.send(hello('raw-1'));
    const welcome = await c.next('welcome');
    expect(welcome.session).toMatchObject({ model: 'mlp' });
    c.ws.send(JSON.stringify({ v: 1, type: 'ready', sessionId: welcome.session.sessionId }));
    const heartbeat = setInterval(() => c.ws.send(JSON.stringify({ v: 1, type: 'heartbeat', at: Date.now(), round: null })), 200);
    try {
      let { assignment } = (await c.next('assignment')) as { assignment: Assignment };
      const first = assignment;
      expect(c.binary.length).toBeGreaterThan(0);
      const paramCount = welcome.session.paramCount as number;
      const frame = (overrides: object = {}, values = new Float32Array(paramCount).fill(0.001)) =>
        encodeFrame(
          {
            kind: FrameKind.Gradient,
            sessionId: assignment.sessionId,
            round: assignment.round,
            nodeId: assignment.nodeId,
            attempt: assignment.attempt,
            modelVersion: assignment.modelVersion,
            sampleCount: assignment.shardCount,
            trainLoss: 2.3,
            ...overrides,
          },
          values,
        );
      // `answers`: the frame answers this node's assignment (its round, attempt and node), so the refusal is the
      // node's answer for the round: agents do not resend, and the round closes without waiting for it (this
      // node is alone, so below quorum) and the next one is assigned at once.
      const expectRejected = async (bytes: Uint8Array, code: string, answers = false) => {
        c.ws.send(bytes);
        const rejected = await c.next('rejected');
        expect(rejected.code).toBe(code);
        expect(rejected.reason.length).toBeGreaterThan(10);
        if (answers) {
          const before = assignment.round;
          ({ assignment } = (await c.next('assignment', 10_000)) as { assignment: Assignment });
          expect(assignment.round, code).toBe(before + 1);
        }
      };
      let good = frame();
      await expectRejected(good.subarray(0, 40), 'FRAME_TRUNCATED');
      await expectRejected(frame({ nodeId: assignment.nodeId + 100 }), 'WRONG_NODE');
      await expectRejected(frame({ round: assignment.round + 5 }), 'FUTURE_ROUND');
      await expectRejected(frame({ sessionId: 999 }), 'UNKNOWN_SESSION');
      // A frame whose length disagrees with its header: the header is not trusted, so it answers nothing.
      await expectRejected(good.subarray(0, good.length - 8), 'FRAME_TRUNCATED');
      const flipped = frame();
      flipped[200] ^= 0xff;
      await expectRejected(flipped, 'CHECKSUM', true);
      const nan = new Float32Array(paramCount).fill(0.001);
      nan[12345] = Number.NaN;
      await expectRejected(frame({}, nan), 'NON_FINITE', true);
      await expectRejected(frame({}, new Float32Array(paramCount - 1)), 'PARAM_COUNT', true);
      await expectRejected(frame({ sampleCount: 1_000_000 }), 'BAD_SAMPLE_COUNT', true);
      await expectRejected(frame({ modelVersion: assignment.modelVersion + 1 }), 'STALE_MODEL', true);
      // A frame for a round it answered: that round closed when it did.
      expect(assignment.round).toBe(first.round + 5);
      await expectRejected(frame({ round: assignment.round - 1 }), 'STALE_ROUND');
      good = frame();
      const badVersion = good.slice();
      new DataView(badVersion.buffer).setUint16(4, 7, true);
      await expectRejected(badVersion, 'PROTOCOL_VERSION');

      c.ws.send(good);
      expect(await c.next('accepted')).toMatchObject({ round: assignment.round, samples: assignment.shardCount });
      await expectRejected(good, 'STALE_ROUND');
      await eventually(
        async () => ((await (await fetch(`${server.baseUrl}/api/status`)).json()) as any).round,
        (r) => r >= assignment.round,
        10_000,
        'the round to be applied',
      );
      // The ledger holds one applied contribution and every rejection with its reason (rejections are
      // written as one counted row per round, node and reason, at the next round close or within a second).
      const db = new Database(path.join(server.dataDir, 'hypergpu.db'), { readonly: true });
      try {
        const applied = db.prepare('SELECT COUNT(*) AS n FROM Contribution WHERE nodeId = ?').get(assignment.nodeId) as { n: number };
        expect(applied.n).toBe(1);
        const expected = ['FRAME_TRUNCATED', 'CHECKSUM', 'NON_FINITE', 'PARAM_COUNT', 'WRONG_NODE', 'FUTURE_ROUND', 'UNKNOWN_SESSION', 'BAD_SAMPLE_COUNT', 'STALE_MODEL', 'PROTOCOL_VERSION', 'STALE_ROUND'];
        const reasons = await eventually(
          async () => (db.prepare('SELECT reason, count FROM RejectedUpdate').all() as { reason: string; count: number }[]).map((r) => r.reason.split(':')[0]),
          (found) => expected.every((code) => found.includes(code)),
          10_000,
          'every rejection to be in the ledger',
        );
        // FRAME_TRUNCATED came twice: one row that counts both.
        const truncated = db.prepare("SELECT count FROM RejectedUpdate WHERE reason LIKE 'FRAME_TRUNCATED%'").all() as { count: number }[];
        expect(truncated.reduce((sum, r) => sum + r.count, 0)).toBe(2);
        expect(reasons.length).toBeGreaterThanOrEqual(expected.length);
      } finally {
        db.close();
      }
    } finally {
      clearInterval(heartbeat);
      c.ws.close();
    }
    await healthy();
  });

  it('keeps a node name for the agent that registered it first', async () => {
    const owner = await connect(url);
    owner.ws.send(hello('owned-name'));
    const welcome = await owner.next('welcome');
    expect(typeof welcome.token).toBe('string');
    const impostor = await connect(url);
    impostor.ws.send(hello('owned-name'));
    const error = await impostor.next('error');
    expect(error.code).toBe('NAME_TAKEN');
    expect((await impostor.closed).code).toBe(4006);
    expect(owner.ws.readyState).toBe(WebSocket.OPEN);
    // The owner, presenting its token from a new connection, gets its node back.
    const returning = await connect(url);
    returning.ws.send(hello('owned-name', { token: welcome.token }));
    expect((await returning.next('welcome')).nodeId).toBe(welcome.nodeId);
    expect((await owner.closed).code).toBe(4003);
    returning.ws.close();
  });

  it('closes a connection whose frame exceeds the size limit, and one that floods', async () => {
    const big = await connect(url);
    big.ws.send(hello('raw-big'));
    await big.next('welcome');
    big.ws.send(new Uint8Array(2 * 1024 * 1024));
    expect((await big.closed).code).toBe(1009);

    const flood = await connect(url);
    flood.ws.send(hello('raw-flood'));
    await flood.next('welcome');
    for (let i = 0; i < 2000; i++) flood.ws.send(JSON.stringify({ v: 1, type: 'heartbeat', at: i, round: null }));
    expect((await flood.closed).code).toBe(4008);
    await healthy();
    const nodes = ((await (await fetch(`${server.baseUrl}/api/nodes`)).json()) as any).nodes;
    expect(nodes.find((n: any) => n.name === 'raw-flood').status).toBe('failed');
  });
});
