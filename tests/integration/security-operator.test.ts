// A hostile client against the real server: who may operate the coordinator, and what a web page the operator
// happens to open can do to it. CSRF (a text/plain POST), missing and wrong credentials, the browser sign-in
// cookie, cross-site WebSockets, a tRPC WebSocket mutation without a session, DNS rebinding (a foreign Host),
// out-of-bounds settings and oversize tRPC WebSocket messages; then the generated admin token: shown once.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { OPERATOR_HEADERS, startServer, TEST_ADMIN_TOKEN, waitForHttp, type ServerProcess } from '../support/server-process';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** A request with whatever headers a hostile client likes (fetch will not send a Host of our choosing). */
function request(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

type Upgrade = { opened: true; ws: WebSocket } | { opened: false; status: number; body: string };

/** Opens a WebSocket with the given headers; resolves with the socket, or with the HTTP answer that refused it. */
function upgrade(port: number, path: string, headers: Record<string, string> = {}, options: WebSocket.ClientOptions = {}): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers, ...options });
    ws.once('open', () => resolve({ opened: true, ws }));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ opened: false, status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    ws.once('error', (error) => reject(error));
  });
}

/** Sends one tRPC WebSocket request and waits for the (first accepted) answer with its id. */
function trpcCall(
  ws: WebSocket,
  message: { id: number; method: 'query' | 'mutation' | 'subscription'; params: { path: string; input?: unknown } },
  accept: (reply: any) => boolean = () => true,
): Promise<any> {
  return new Promise((resolve, reject) => {
    const onMessage = (data: WebSocket.RawData) => {
      const reply = JSON.parse(data.toString());
      if (reply.id !== message.id || !accept(reply)) return;
      ws.off('message', onMessage);
      resolve(reply);
    };
    ws.on('message', onMessage);
    ws.once('close', (code) => reject(new Error(`socket closed (${code}) before an answer to ${message.id}`)));
    ws.send(JSON.stringify(message));
  });
}

const json = { 'content-type': 'application/json' };

describe('operator credential and cross-site defences', () => {
  let server: ServerProcess;
  const state = async () => (await request(server.port, 'GET', '/api/status')).body.state as string;

  beforeAll(async () => {
    // No agents: the session only has to be running, and the machine is shared.
    server = await startServer(['--no-dashboard', '--no-session', '--nodes', '0']);
    await waitForHttp(`${server.baseUrl}/health`);
    const started = await request(server.port, 'POST', '/api/training/start', { ...OPERATOR_HEADERS, ...json }, JSON.stringify({ batchSize: 64 }));
    expect(started.status).toBe(201);
  });

  afterAll(async () => {
    const code = await server?.stop('SIGTERM');
    expect(code).toBe(0);
    // The configured token is never printed.
    expect(server.output()).not.toContain(TEST_ADMIN_TOKEN);
  });

  it('refuses a cross-site text/plain POST (CSRF) with 415, even with the cookie or token, and training goes on', async () => {
    const csrf = await request(server.port, 'POST', '/api/training/stop', { 'content-type': 'text/plain;charset=UTF-8', origin: 'https://evil.example' }, '');
    expect(csrf.status).toBe(403); // a foreign Origin on a POST is refused first
    const plain = await request(server.port, 'POST', '/api/training/stop', { 'content-type': 'text/plain;charset=UTF-8' }, '{}');
    expect(plain).toMatchObject({ status: 415, body: { error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: expect.stringMatching(/application\/json/) } } });
    const form = await request(server.port, 'POST', '/trpc/training.stop', { 'content-type': 'application/x-www-form-urlencoded', ...OPERATOR_HEADERS }, 'a=1');
    expect(form.status).toBe(415);
    // A no-cors fetch without a body from a page at another port of this machine (same site: the cookie goes along).
    const bare = await request(server.port, 'POST', '/api/training/stop', { cookie: 'hypergpu_session=whatever' }, '');
    expect(bare.status).toBe(415);
    expect(await state()).toBe('running');
  });

  it('answers 401 without a credential and 403 with a wrong one, saying what to do', async () => {
    const none = await request(server.port, 'POST', '/api/training/pause', json, '');
    expect(none).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED', message: expect.stringMatching(/sign in at \/sign-in or send Authorization: Bearer/) } } });
    const wrong = await request(server.port, 'POST', '/api/training/pause', { ...json, authorization: 'Bearer not-the-token' }, '');
    expect(wrong).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN', message: expect.stringMatching(/not the admin token/) } } });
    const trpcNone = await request(server.port, 'POST', '/trpc/training.pause', json, '');
    expect(trpcNone.status).toBe(401);
    expect(trpcNone.body.error.data.code).toBe('UNAUTHORIZED');
    expect(await state()).toBe('running');
    // Reads stay public.
    expect((await request(server.port, 'GET', '/trpc/training.status')).status).toBe(200);
  });

  it('takes the right token, as a bearer header (bodiless POST) or with JSON', async () => {
    expect((await request(server.port, 'POST', '/api/training/pause', { ...OPERATOR_HEADERS })).body.state).toBe('paused');
    expect((await request(server.port, 'POST', '/trpc/training.resume', { ...OPERATOR_HEADERS, ...json }, '')).status).toBe(200);
    expect(await state()).toBe('running');
  });

  it('signs a browser in with an HttpOnly SameSite=Strict cookie that operates tRPC over HTTP, and signs it out', async () => {
    expect((await request(server.port, 'POST', '/api/auth/sign-in', json, JSON.stringify({ token: 'wrong-token' }))).status).toBe(403);
    expect((await request(server.port, 'POST', '/api/auth/sign-in', { 'content-type': 'text/plain' }, JSON.stringify({ token: TEST_ADMIN_TOKEN }))).status).toBe(415);
    const signIn = await request(server.port, 'POST', '/api/auth/sign-in', json, JSON.stringify({ token: TEST_ADMIN_TOKEN }));
    expect(signIn).toMatchObject({ status: 200, body: { signedIn: true } });
    const setCookie = signIn.headers['set-cookie']![0];
    expect(setCookie).toMatch(/^hypergpu_session=[\w-]{43};/);
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; SameSite=Strict/);
    expect(setCookie).toMatch(/; Path=\//);
    expect(setCookie).toMatch(/; Max-Age=43200/);
    const cookie = setCookie.split(';')[0];
    expect((await request(server.port, 'GET', '/api/auth/session', { cookie })).body).toMatchObject({ signedIn: true, via: 'session' });
    expect((await request(server.port, 'GET', '/api/auth/session')).body).toMatchObject({ signedIn: false });

    const pause = await request(server.port, 'POST', '/trpc/training.pause', { ...json, cookie }, '');
    expect(pause.status).toBe(200);
    expect(pause.body.result.data.state).toBe('paused');
    expect((await request(server.port, 'POST', '/trpc/training.resume', { ...json, cookie }, '')).status).toBe(200);

    const signOut = await request(server.port, 'POST', '/api/auth/sign-out', { ...json, cookie }, '');
    expect(signOut.status).toBe(200);
    expect(signOut.headers['set-cookie']![0]).toMatch(/Max-Age=0/);
    expect((await request(server.port, 'POST', '/trpc/training.pause', { ...json, cookie }, '')).status).toBe(403);
    expect(await state()).toBe('running');
  });

  it('refuses WebSocket upgrades from a foreign Origin to /trpc-ws and /agent before the handshake', async () => {
    for (const path of ['/trpc-ws', '/agent']) {
      const foreign = await upgrade(server.port, path, {}, { origin: 'https://evil.example' });
      expect(foreign.opened, path).toBe(false);
      if (!foreign.opened) {
        expect(foreign.status).toBe(403);
        expect(foreign.body).toMatch(/ORIGIN_NOT_ALLOWED.*HYPERGPU_ALLOWED_ORIGINS/);
      }
    }
    // The server's own page may connect; so may an agent, which sends no Origin.
    const own = await upgrade(server.port, '/trpc-ws', {}, { origin: `http://127.0.0.1:${server.port}` });
    expect(own.opened).toBe(true);
    if (own.opened) own.ws.close();
  });

  it('refuses a tRPC WebSocket mutation without a session; the upgrade cookie operates it', async () => {
    const anonymous = await upgrade(server.port, '/trpc-ws');
    if (!anonymous.opened) throw new Error(`upgrade refused: ${anonymous.status}`);
    const refused = await trpcCall(anonymous.ws, { id: 1, method: 'mutation', params: { path: 'training.stop' } });
    expect(refused.error.data.code).toBe('UNAUTHORIZED');
    expect(refused.error.message).toMatch(/sign-in/);
    expect(await state()).toBe('running');
    // A forged cookie is no better.
    const forged = await upgrade(server.port, '/trpc-ws', { cookie: 'hypergpu_session=forged' });
    if (!forged.opened) throw new Error('upgrade refused');
    expect((await trpcCall(forged.ws, { id: 1, method: 'mutation', params: { path: 'training.stop' } })).error.data.code).toBe('FORBIDDEN');
    forged.ws.close();
    expect(await state()).toBe('running');

    const signIn = await request(server.port, 'POST', '/api/auth/sign-in', json, JSON.stringify({ token: TEST_ADMIN_TOKEN }));
    const cookie = signIn.headers['set-cookie']![0].split(';')[0];
    const operator = await upgrade(server.port, '/trpc-ws', { cookie }, { origin: `http://127.0.0.1:${server.port}` });
    if (!operator.opened) throw new Error('upgrade refused');
    expect((await trpcCall(operator.ws, { id: 2, method: 'mutation', params: { path: 'training.pause' } })).result.data.state).toBe('paused');
    expect((await trpcCall(operator.ws, { id: 3, method: 'mutation', params: { path: 'training.resume' } })).result.data.state).toBe('running');
    // Signed out while the socket stays open: the socket loses the right too.
    await request(server.port, 'POST', '/api/auth/sign-out', { ...json, cookie }, '');
    expect((await trpcCall(operator.ws, { id: 4, method: 'mutation', params: { path: 'training.stop' } })).error.data.code).toBe('FORBIDDEN');
    operator.ws.close();
    anonymous.ws.close();
    expect(await state()).toBe('running');
  });

  it('holds at most 4 live subscriptions per tRPC WebSocket, and closes one that sends an oversize message', async () => {
    const socket = await upgrade(server.port, '/trpc-ws');
    if (!socket.opened) throw new Error('upgrade refused');
    const first = await Promise.all([1, 2, 3, 4].map((id) => trpcCall(socket.ws, { id, method: 'subscription', params: { path: 'live.dashboard' } })));
    for (const reply of first) expect(reply.error).toBeUndefined();
    // tRPC answers 'started' before the subscription runs; the refusal follows it.
    const fifth = await trpcCall(socket.ws, { id: 5, method: 'subscription', params: { path: 'live.dashboard' } }, (reply) => reply.error !== undefined);
    expect(fifth.error.data.code).toBe('TOO_MANY_REQUESTS');

    const closed = new Promise<number>((resolve) => socket.ws.once('close', (code) => resolve(code)));
    socket.ws.send(JSON.stringify({ id: 9, method: 'query', params: { path: 'training.status', input: 'x'.repeat(100 * 1024) } }));
    expect(await closed).toBe(1009);
    expect((await request(server.port, 'GET', '/health')).status).toBe(200);
  });

  it('refuses a Host it does not answer to (DNS rebinding), over HTTP and on upgrades, naming the setting', async () => {
    const rebound = await request(server.port, 'GET', '/api/status', { host: `evil.example:${server.port}` });
    expect(rebound).toMatchObject({ status: 403, body: { error: { code: 'HOST_NOT_ALLOWED', message: expect.stringMatching(/--public-host|HYPERGPU_PUBLIC_HOSTS/) } } });
    const mutation = await request(server.port, 'POST', '/api/training/stop', { host: `evil.example:${server.port}`, ...OPERATOR_HEADERS, ...json }, '');
    expect(mutation.status).toBe(403);
    const ws = await upgrade(server.port, '/trpc-ws', { host: `evil.example:${server.port}` });
    expect(ws.opened).toBe(false);
    if (!ws.opened) expect(ws.status).toBe(403);
    expect((await request(server.port, 'GET', '/api/status', { host: `localhost:${server.port}` })).status).toBe(200);
    expect(await state()).toBe('running');
  });

  it('refuses out-of-bounds settings with 400 and the reason', async () => {
    const start = (body: object) => request(server.port, 'POST', '/api/training/start', { ...OPERATOR_HEADERS, ...json }, JSON.stringify(body));
    const norm = await start({ maxUpdateNorm: 1e300 });
    expect(norm).toMatchObject({ status: 400, body: { error: { code: 'BAD_REQUEST', message: expect.stringMatching(/maxUpdateNorm/) } } });
    expect((await start({ minCompletion: 0 })).body.error.message).toMatch(/minCompletion/);
    expect((await start({ checkpointEvery: 1 })).body.error.message).toMatch(/checkpointEvery/);
    expect((await start({ roundTimeoutMs: 10 })).status).toBe(400);
    expect(await state()).toBe('running');
  });
});

describe('generated admin token', () => {
  it('is printed once at first start, works, is not printed again, and --reset-admin-token replaces it', async () => {
    const env = { HYPERGPU_ADMIN_TOKEN: '' };
    const first = await startServer(['--no-dashboard', '--no-session', '--nodes', '0'], { env });
    let token: string;
    try {
      token = (await first.waitForOutput(/^\s+(hgpu_[\w-]{43})$/m))[1];
      expect(first.output()).toMatch(/--reset-admin-token/);
      await waitForHttp(`${first.baseUrl}/health`);
      expect((await request(first.port, 'POST', '/api/training/pause', { authorization: `Bearer ${token}` })).status).toBe(409); // no session: authorized
      expect((await request(first.port, 'POST', '/api/training/pause', {})).status).toBe(401);
      expect((await request(first.port, 'POST', '/api/training/pause', { 'content-type': 'text/plain' }, '')).status).toBe(415);
      expect((await request(first.port, 'POST', '/api/training/pause', json, '')).status).toBe(401);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    const second = await startServer(['--no-dashboard', '--no-session', '--nodes', '0'], { env, dataDir: first.dataDir });
    try {
      await second.waitForOutput(/Admin token: set at first start/);
      expect(second.output()).not.toContain(token);
      expect((await request(second.port, 'POST', '/api/training/pause', { authorization: `Bearer ${token}` })).status).toBe(409);
    } finally {
      expect(await second.stop()).toBe(0);
    }
    const third = await startServer(['--no-dashboard', '--no-session', '--nodes', '0', '--reset-admin-token'], { env, dataDir: first.dataDir });
    try {
      const fresh = (await third.waitForOutput(/^\s+(hgpu_[\w-]{43})$/m))[1];
      expect(fresh).not.toBe(token);
      await waitForHttp(`${third.baseUrl}/health`);
      expect((await request(third.port, 'POST', '/api/training/pause', { authorization: `Bearer ${token}` })).status).toBe(403);
      expect((await request(third.port, 'POST', '/api/training/pause', { authorization: `Bearer ${fresh}` })).status).toBe(409);
    } finally {
      expect(await third.stop()).toBe(0);
    }
  });
});
