// Hostile agents against the real server, over real sockets: admission by join tokens, the name-claim race,
// oversized frames before hello, idle socket floods, slow readers, rejection floods, offender bans, and TLS.
// Counts and durations are bounded (a few seconds each) and everything stays on 127.0.0.1.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../bench/lib/sim-agent';
import { eventually, OPERATOR_HEADERS, startServer, tempDataDir, waitForHttp, type ServerProcess } from '../support/server-process';

const capabilities = { backend: 'test', device: 'raw client', samplesPerSecond: 1, agentVersion: 'test', hostname: 'test' };
const hello = (name: string, extra: object = {}) => JSON.stringify({ v: 1, type: 'hello', name, capabilities, ...extra });

interface Answer {
  messages: any[];
  close: { code: number; reason: string } | null;
}

/** Opens a socket, sends hello, and collects what comes back until the first welcome or close. */
async function helloAnswer(url: string, text: string, options: WebSocket.ClientOptions = {}): Promise<Answer & { ws: WebSocket }> {
  const ws = new WebSocket(url, options);
  const messages: any[] = [];
  let close: Answer['close'] = null;
  return new Promise((resolve, reject) => {
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const message = JSON.parse(data.toString());
      messages.push(message);
      if (message.type === 'welcome') resolve({ ws, messages, close });
    });
    ws.on('close', (code, reason) => {
      close = { code, reason: reason.toString() };
      resolve({ ws, messages, close });
    });
    ws.on('error', reject);
    ws.on('open', () => ws.send(text));
  });
}

function rssKiB(pid: number): number {
  const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return match ? Number(match[1]) : NaN;
}

async function post(base: string, route: string, body?: object): Promise<any> {
  const res = await fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json', ...OPERATOR_HEADERS }, body: body ? JSON.stringify(body) : undefined });
  const json = await res.json();
  if (!res.ok) throw new Error(`${route}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const getJson = async (base: string, route: string) => (await fetch(`${base}${route}`, { headers: OPERATOR_HEADERS })).json() as Promise<any>;

/** A raw TCP connection that does the WebSocket upgrade by hand; resolves with the status line it got. */
function rawUpgrade(port: number): Promise<{ socket: net.Socket; status: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let head = '';
    socket.on('error', () => undefined);
    socket.once('connect', () =>
      socket.write(
        `GET /agent HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n');
      if (end >= 0) {
        socket.off('data', onData);
        resolve({ socket, status: head.slice(0, end) });
      }
    };
    socket.on('data', onData);
    socket.once('close', () => resolve({ socket, status: head.slice(0, head.indexOf('\r\n')) || 'closed' }));
    socket.setTimeout(15_000, () => reject(new Error('upgrade timed out')));
  });
}

describe('hostile agents', () => {
  let server: ServerProcess;
  let base: string;
  let url: string;
  let pid: number;

  beforeAll(async () => {
    server = await startServer(['--no-dashboard', '--no-session', '--nodes', '0'], {
      env: {
        HYPERGPU_OPEN_POOL: '0',
        HYPERGPU_HELLO_TIMEOUT_MS: '1500',
        // This file's clients all come from 127.0.0.1: an address ban would end the file early. The ban has its
        // own case below, on its own server.
        HYPERGPU_AGENT_OFFENDER_STRIKES: '1000000',
      },
    });
    await waitForHttp(`${server.baseUrl}/health`);
    base = server.baseUrl;
    url = `ws://127.0.0.1:${server.port}/agent`;
    pid = server.child.pid!;
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('refuses a hello without a join token, and with a revoked one; admits with a valid one; the node secret suffices later', async () => {
    const none = await helloAnswer(url, hello('newcomer'));
    expect(none.messages.find((m) => m.type === 'error')).toMatchObject({ code: 'JOIN_TOKEN_REQUIRED', message: expect.stringContaining('--join-token') });
    expect(none.close?.code).toBe(4010);

    const issued = await post(base, '/api/join-tokens', { label: 'test pool', expiresInSeconds: 600 });
    expect(issued.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const admitted = await helloAnswer(url, hello('newcomer', { joinToken: issued.token }));
    const welcome = admitted.messages.find((m) => m.type === 'welcome');
    expect(welcome.token).toBeTruthy();
    admitted.ws.close();

    // The list never shows a secret.
    const listed = await getJson(base, '/api/join-tokens');
    expect(listed.joinTokens).toEqual([expect.objectContaining({ id: issued.joinToken.id, label: 'test pool', revokedAt: null })]);
    expect(JSON.stringify(listed)).not.toContain(issued.token);

    const revoked = await post(base, `/api/join-tokens/${issued.joinToken.id}/revoke`);
    expect(revoked.revokedAt).toEqual(expect.any(Number));
    const refused = await helloAnswer(url, hello('second-newcomer', { joinToken: issued.token }));
    expect(refused.messages.find((m) => m.type === 'error')).toMatchObject({ code: 'JOIN_TOKEN_INVALID', message: expect.stringContaining('revoked') });
    expect(refused.close?.code).toBe(4010);

    // A returning node proves its name with its own secret; the revoked join token does not matter to it.
    const back = await helloAnswer(url, hello('newcomer', { token: welcome.token }));
    expect(back.messages.find((m) => m.type === 'welcome')?.nodeId).toBe(welcome.nodeId);
    back.ws.close();
    // A token bound to one name admits only that name.
    const bound = await post(base, '/api/join-tokens', { nodeName: 'only-me' });
    const wrong = await helloAnswer(url, hello('not-me', { joinToken: bound.token }));
    expect(wrong.messages.find((m) => m.type === 'error')?.code).toBe('JOIN_TOKEN_INVALID');
    const right = await helloAnswer(url, hello('only-me', { joinToken: bound.token }));
    expect(right.messages.find((m) => m.type === 'welcome')).toBeTruthy();
    right.ws.close();
  });

  it('gives a new name to one of two concurrent hellos only', async () => {
    const { token } = await post(base, '/api/join-tokens', { label: 'race' });
    for (let attempt = 0; attempt < 5; attempt++) {
      const name = `contested-${attempt}`;
      const answers = await Promise.all([helloAnswer(url, hello(name, { joinToken: token })), helloAnswer(url, hello(name, { joinToken: token }))]);
      const secrets = answers.map((a) => a.messages.find((m) => m.type === 'welcome')?.token).filter(Boolean);
      expect(secrets, name).toHaveLength(1);
      const loser = answers.find((a) => !a.messages.some((m) => m.type === 'welcome'))!;
      expect(loser.messages.find((m) => m.type === 'error')?.code).toBe('NAME_TAKEN');
      for (const a of answers) a.ws.close();
    }
  });

  it('closes a 200 MB frame sent before hello at the small cap; the coordinator RSS stays flat', async () => {
    const before = rssKiB(pid);
    const { socket, status } = await rawUpgrade(server.port);
    expect(status).toContain('101');
    const total = 200 * 1024 * 1024;
    // A masked binary frame header announcing 200 MB, then the payload in 1 MiB chunks until the server hangs up.
    const header = Buffer.alloc(14);
    header[0] = 0x82;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(total), 2);
    randomBytes(4).copy(header, 10);
    let closed = false;
    socket.once('close', () => (closed = true));
    const closeFrame = new Promise<number | null>((resolve) => {
      // The server's frames (unmasked), read in order: the wallet challenge (a text frame sent at connect) and
      // pings come before the close frame, possibly in the same chunk. Close: opcode 8, the status code in the
      // first two payload bytes.
      let pending = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 2) {
          const short = pending[1] & 0x7f;
          const headerBytes = short === 126 ? 4 : short === 127 ? 10 : 2;
          if (pending.length < headerBytes) break;
          const length = short === 126 ? pending.readUInt16BE(2) : short === 127 ? Number(pending.readBigUInt64BE(2)) : short;
          if (pending.length < headerBytes + length) break;
          if ((pending[0] & 0x0f) === 8 && length >= 2) return resolve(pending.readUInt16BE(headerBytes));
          pending = pending.subarray(headerBytes + length);
        }
      });
      socket.once('close', () => resolve(null));
    });
    socket.write(header);
    const chunk = Buffer.alloc(1024 * 1024);
    let sent = 0;
    while (sent < total && !closed && !socket.destroyed) {
      if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
      sent += chunk.length;
    }
    const code = await Promise.race([closeFrame, new Promise<number | null>((resolve) => setTimeout(() => resolve(-1), 5000))]);
    socket.destroy();
    // Refused at the 64 KiB pre-hello cap, not at the model-sized one: the connection ends after a few MiB (what
    // was in flight), not 200 MB. The close frame says 1009 (message too big) when it arrives; a client that keeps
    // writing after the server's close can have it discarded by the TCP reset that follows, so its absence is not
    // a failure, but a timeout (-1: the server never cut the transfer) or another code is.
    expect(code).not.toBe(-1);
    if (code !== null) expect(code).toBe(1009);
    expect(sent).toBeLessThan(16 * 1024 * 1024);
    const after = rssKiB(pid);
    console.log(`200 MB pre-hello frame: sent ${Math.round(sent / 1024 / 1024)} MiB; server RSS ${before} -> ${after} KiB`);
    expect(after - before).toBeLessThan(32 * 1024);
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('caps 1,000 idle sockets from one address, closes the admitted ones at the hello timeout, and keeps answering', async () => {
    const started = Date.now();
    const attempts = await Promise.all(Array.from({ length: 1000 }, () => rawUpgrade(server.port)));
    const upgraded = attempts.filter((a) => a.status.includes('101'));
    const refused = attempts.filter((a) => a.status.includes('503'));
    console.log(`1,000 idle sockets: ${upgraded.length} upgraded, ${refused.length} refused (503) in ${Date.now() - started} ms`);
    expect(upgraded.length).toBeLessThanOrEqual(64);
    expect(upgraded.length + refused.length).toBe(1000);
    const t0 = Date.now();
    const status = await fetch(`${base}/api/status`);
    const statusMs = Date.now() - t0;
    console.log(`/api/status with ${upgraded.length} idle sockets open: ${statusMs} ms`);
    expect(status.status).toBe(200);
    expect(statusMs).toBeLessThan(1000);
    // The hello timeout (1.5 s here) closes every admitted idle socket.
    await eventually(async () => upgraded.filter((a) => !a.socket.destroyed && !a.socket.readableEnded).length, (open) => open === 0, 10_000, 'idle sockets closed by the hello timeout');
    for (const a of attempts) a.socket.destroy();
    // The slots are free again: an honest hello is admitted.
    const { token } = await post(base, '/api/join-tokens', {});
    await eventually(
      async () => (await helloAnswer(url, hello('after-idle', { joinToken: token }))).messages.some((m) => m.type === 'welcome'),
      (ok) => ok,
      10_000,
      'a hello admitted after the idle sockets',
    );
  });

  /** A retried test finds the session its failed attempt left running: stop it first (no session: a 409, ignored). */
  const leftovers: SimAgent[] = [];
  const stopAnySession = async () => {
    for (const a of leftovers.splice(0)) a.close();
    const res = await fetch(`${base}/api/training/stop`, { method: 'POST', headers: { 'content-type': 'application/json', ...OPERATOR_HEADERS }, body: '{}' });
    await res.body?.cancel();
  };

  it('keeps honest rounds at pace while one connection floods rejected frames', async () => {
    await stopAnySession();
    const { token } = await post(base, '/api/join-tokens', { label: 'flood test' });
    await post(base, '/api/training/start', { batchSize: 32, roundTimeoutMs: 2000, evalEvery: 100_000, checkpointEvery: 100_000 });
    const honest = [new SimAgent(url, 'honest-1', 200, token), new SimAgent(url, 'honest-2', 200, token)];
    leftovers.push(...honest);
    await Promise.all(honest.map((a) => a.connect()));
    const roundsPerSecond = async (ms: number) => {
      const r0 = (await getJson(base, '/api/status')).session.round;
      await new Promise((resolve) => setTimeout(resolve, ms));
      const r1 = (await getJson(base, '/api/status')).session.round;
      return ((r1 - r0) * 1000) / ms;
    };
    await eventually(() => getJson(base, '/api/status'), (s) => s.session.round >= 5, 30_000, 'first rounds');
    const before = await roundsPerSecond(3000);

    // The flooder registers, then sends frames that each decode to a rejection (a bad magic number), about
    // 400 a second: under the gateway's message cap, so every frame reaches the engine. The engine bans a node
    // after enough rejections; the flooder then comes back under a new name with the same pool token, as an
    // attacker holding a leaked token would, so the flood lasts the whole measurement.
    const junk = Buffer.alloc(64, 0xab);
    let sent = 0;
    let names = 0;
    let flooder: WebSocket | null = null;
    let flooding = true;
    const connectFlooder = async () => {
      while (flooding) {
        const answer = await helloAnswer(url, hello(`flooder-${++names}`, { joinToken: token }));
        if (!answer.messages.some((m) => m.type === 'welcome')) continue;
        flooder = answer.ws;
        await new Promise((resolve) => answer.ws.once('close', resolve));
      }
    };
    const flooderLoop = connectFlooder();
    const timer = setInterval(() => {
      for (let i = 0; i < 40 && flooder?.readyState === WebSocket.OPEN; i++, sent++) flooder.send(junk, { binary: true });
    }, 100);
    const during = await roundsPerSecond(3000);
    clearInterval(timer);
    flooding = false;
    (flooder as WebSocket | null)?.close();
    await flooderLoop;
    console.log(`rejection flood: ${sent} junk frames in 3 s from ${names} flooder name(s); honest rounds/s before ${before.toFixed(1)}, during ${during.toFixed(1)}`);
    // The stated bound: the flood costs honest training at most half its pace.
    expect(before).toBeGreaterThan(1);
    expect(during).toBeGreaterThanOrEqual(before * 0.5);
    for (const a of honest) a.close();
    await post(base, '/api/training/stop');
  });

  it('disconnects a slow reader while rounds send it model frames; memory stays bounded', async () => {
    await stopAnySession();
    const { token } = await post(base, '/api/join-tokens', { label: 'slow reader' });
    await post(base, '/api/training/start', { batchSize: 32, roundTimeoutMs: 1000, evalEvery: 100_000, checkpointEvery: 100_000 });
    // Starting a session loads the evaluator (a worker with TensorFlow.js): let that settle before measuring.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const before = rssKiB(pid);
    const slow = new SimAgent(url, 'slow-reader', 200, token);
    leftovers.push(slow);
    await slow.connect();
    slow.stopReading();
    const t0 = Date.now();
    // Alone in the session it is assigned every round, and every round sends it a 437 KB model frame.
    await eventually(async () => slow.disconnected, (gone) => gone, 60_000, 'the slow reader disconnected');
    const [, queued, bound] = (await server.waitForOutput(/slow reader: (\d+) bytes queued unread \(bound (\d+)\)/, 5000)).map(Number);
    const after = rssKiB(pid);
    console.log(`slow reader: disconnected after ${Date.now() - t0} ms with ${queued} bytes queued (bound ${bound}); server RSS ${before} -> ${after} KiB`);
    // What the coordinator held for it: at most the bound plus the frame it was about to send.
    expect(queued).toBeLessThanOrEqual(bound + 437_608);
    expect(after - before).toBeLessThan(64 * 1024);
    slow.close();
    await post(base, '/api/training/stop');
  });
});

describe('offenders', () => {
  it('refuses an address for a while after repeated protocol errors', async () => {
    const server = await startServer(['--no-dashboard', '--no-session', '--nodes', '0'], { env: { HYPERGPU_OPEN_POOL: '0', HYPERGPU_AGENT_OFFENDER_STRIKES: '5', HYPERGPU_AGENT_OFFENDER_BAN_S: '60' } });
    try {
      await waitForHttp(`${server.baseUrl}/health`);
      const url = `ws://127.0.0.1:${server.port}/agent`;
      for (let i = 0; i < 5; i++) {
        const answer = await helloAnswer(url, hello(`stranger-${i}`, { joinToken: 'guessed-token-0000000000' }));
        expect(answer.messages.find((m) => m.type === 'error')?.code).toBe('JOIN_TOKEN_INVALID');
      }
      const { status } = await rawUpgrade(server.port);
      expect(status).toContain('429');
      await server.waitForOutput(/refused for 60 s: 5 protocol errors or abusive closes/, 5000);
      // The operator's API is not the agent gateway: it still answers.
      expect((await fetch(`${server.baseUrl}/health`)).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});

describe('idle names', () => {
  it('prunes names never credited and not seen for the idle time at start; the name is free again', async () => {
    const dataDir = tempDataDir();
    const first = await startServer(['--no-dashboard', '--no-session', '--nodes', '0'], { dataDir, env: { HYPERGPU_OPEN_POOL: '1' } });
    let secret: string;
    try {
      await waitForHttp(`${first.baseUrl}/health`);
      const answer = await helloAnswer(`ws://127.0.0.1:${first.port}/agent`, hello('passer-by'));
      secret = answer.messages.find((m) => m.type === 'welcome').token;
      expect(secret).toBeTruthy();
      answer.ws.close();
    } finally {
      await first.stop();
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // 1e-5 days is under a second: the name registered above has been idle longer than that.
    const second = await startServer(['--no-dashboard', '--no-session', '--nodes', '0'], { dataDir, env: { HYPERGPU_OPEN_POOL: '1', HYPERGPU_IDLE_NODE_DAYS: '0.00001' } });
    try {
      await second.waitForOutput(/pruned 1 node name\(s\) never credited/, 60_000);
      await waitForHttp(`${second.baseUrl}/health`);
      // Another agent may take the name now: it is given a new secret.
      const answer = await helloAnswer(`ws://127.0.0.1:${second.port}/agent`, hello('passer-by'));
      const welcome = answer.messages.find((m) => m.type === 'welcome');
      expect(welcome.token).toBeTruthy();
      expect(welcome.token).not.toBe(secret);
      answer.ws.close();
    } finally {
      await second.stop();
    }
  });
});

describe('TLS', () => {
  const haveOpenssl = (() => {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!haveOpenssl)('serves HTTPS and wss:// on one port; a local agent trusting the self-signed certificate trains rounds', async () => {
    const dir = tempDataDir('hypergpu-tls-');
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
    expect(existsSync(cert)).toBe(true);
    // Headless with one local agent: it gets a join token and the certificate as its CA from the server.
    const server = await startServer(['--headless', '--nodes', '1', '--max-rounds', '3', '--batch-size', '32', '--eval-every', '5', '--tls-cert', cert, '--tls-key', key, '--timeout', '240'], {
      dataDir: path.join(dir, 'data'),
      env: { HYPERGPU_OPEN_POOL: '0' },
    });
    try {
      await server.waitForOutput(/Headless run/, 120_000);
      const status = await new Promise<number>((resolve, reject) => {
        httpsGet(`https://127.0.0.1:${server.port}/api/status`, { ca: readFileSync(cert) }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
      expect(status).toBe(200);
      // Plain ws:// to a TLS port does not get in.
      await expect(helloAnswer(`ws://127.0.0.1:${server.port}/agent`, hello('plain'))).rejects.toThrow();
      const code = await server.exited;
      const output = server.output();
      const summary = JSON.parse(output.slice(output.indexOf('{\n'), output.lastIndexOf('}') + 1));
      expect(summary.rounds).toBeGreaterThanOrEqual(3);
      expect(summary.nodes).toBe(1);
      expect(code).toBe(0);
    } finally {
      await server.stop();
    }
  }, 300_000);
});
