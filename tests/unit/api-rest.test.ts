// The REST facade, fed requests in-process: the original paths, statuses and bodies, served by the same
// procedures as tRPC (same input checks, same outputs), errors as { error: { code, message } }.
import { Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AdmissionError } from '../../src/protocol/errors';
import { defineQuery } from '../../src/server/api/procedure';
import { handleRest, restRoutes, type RestAccess } from '../../src/server/api/rest';
import { createFakeControl, type FakeControl } from '../support/fake-control';

interface Answer {
  handled: boolean;
  status: number;
  headers: Record<string, string | number>;
  body: any;
  raw: string;
}

const OPERATOR: RestAccess = { caller: () => ({ kind: 'operator', via: 'token' }), privateReads: false };

async function request(control: FakeControl, method: string, url: string, body?: string | Buffer, access: RestAccess = OPERATOR): Promise<Answer> {
  const req = Readable.from(body === undefined ? [] : [Buffer.from(body)]) as unknown as IncomingMessage;
  Object.assign(req, { method, url, headers: {} });
  const answer: Answer = { handled: false, status: 0, headers: {}, body: undefined, raw: '' };
  const res = {
    headersSent: false,
    setHeader(name: string, value: string) {
      answer.headers[name.toLowerCase()] = value;
    },
    writeHead(status: number, headers: Record<string, string | number>) {
      answer.status = status;
      for (const [k, v] of Object.entries(headers)) answer.headers[k.toLowerCase()] = v;
    },
    end(text?: string) {
      answer.raw = text ?? '';
    },
  } as unknown as ServerResponse;
  answer.handled = await handleRest(req, res, control, Date.now() - 3_000, access);
  if (answer.raw) answer.body = JSON.parse(answer.raw);
  return answer;
}

const get = (control: FakeControl, url: string) => request(control, 'GET', url);
const post = (control: FakeControl, url: string, body?: string) => request(control, 'POST', url, body);

describe('REST facade', () => {
  it('serves /health and /api/status with the bodies scripts read', async () => {
    const control = createFakeControl();
    expect(await get(control, '/health')).toMatchObject({ handled: true, status: 200, body: { status: 'ok', uptimeSeconds: 3, state: 'idle' } });
    const status = await get(control, '/api/status');
    expect(status).toMatchObject({ status: 200, body: { state: 'idle', sessionId: null, round: 0, modelVersion: 0, nodes: { total: 2 }, session: null } });
    expect(status.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(status.headers['content-length']).toBe(Buffer.byteLength(status.raw));
    expect((await get(control, '/api/status/')).status).toBe(200);
  });

  it('serves the model identity at /api/model without a credential', async () => {
    const control = createFakeControl();
    expect(await get(control, '/api/model')).toMatchObject({ status: 200, body: { sessionId: null, modelVersion: 0, paramCount: 0, checksum: null } });
  });

  it('leaves paths it does not own to the caller', async () => {
    const control = createFakeControl();
    expect((await get(control, '/')).handled).toBe(false);
    expect((await get(control, '/dashboard')).handled).toBe(false);
    expect((await get(control, '/trpc/training.status')).handled).toBe(false);
  });

  it('answers lists inside an object, as the original design did', async () => {
    const control = createFakeControl();
    const nodes = await get(control, '/api/nodes');
    expect(nodes.body).toEqual({ nodes: control.nodes() });
    expect((await get(control, '/api/nodes/2')).body).toMatchObject({ id: 2, status: 'failed', statusReason: 'heartbeat timeout' });
    await post(control, '/api/training/start');
    expect((await get(control, '/api/sessions')).body.sessions).toHaveLength(1);
    for (const kind of ['rounds', 'contributions', 'checkpoints', 'events'] as const) {
      const answer = await get(control, `/api/sessions/1/${kind}`);
      expect(answer.status, kind).toBe(200);
      expect(Object.keys(answer.body), kind).toEqual([kind]);
      expect(answer.body[kind].length, kind).toBeGreaterThan(0);
    }
    // NaN is a number to the output schema and null on the wire, as JSON always wrote it.
    expect((await get(control, '/api/sessions/1/contributions')).body.contributions[1].trainLoss).toBeNull();
    expect((await get(control, '/api/sessions/1/ledger')).body).toMatchObject({ ok: true, sessionId: 1, rejectedByReason: { STALE_ROUND: 1 } });
    expect((await get(control, '/api/sessions/1')).body).toMatchObject({ id: 1, state: 'running' });
  });

  it('serves a long session’s rounds and contributions a page at a time, and refuses an oversized page', async () => {
    const control = createFakeControl();
    await post(control, '/api/training/start');
    const base = control.data.rounds.find((r) => r.sessionId === 1)!;
    const contribution = control.data.contributions.find((c) => c.sessionId === 1)!;
    control.data.rounds = Array.from({ length: 30 }, (_, i) => ({ ...base, round: i + 1 }));
    control.data.contributions = Array.from({ length: 30 }, (_, i) => ({ ...contribution, round: i + 1 }));
    const page = await get(control, '/api/sessions/1/rounds?afterRound=10&rounds=5');
    expect(page.body.rounds.map((r: { round: number }) => r.round)).toEqual([11, 12, 13, 14, 15]);
    const contributions = await get(control, '/api/sessions/1/contributions?afterRound=28');
    expect(contributions.body.contributions.map((c: { round: number }) => c.round)).toEqual([29, 30]);
    expect((await get(control, '/api/sessions/1/rounds')).body.rounds).toHaveLength(30); // default page: 1,000 rounds
    const tooBig = await get(control, '/api/sessions/1/rounds?rounds=20000');
    expect(tooBig.status).toBe(400);
    expect(tooBig.body.error.message).toMatch(/rounds/);
  });

  it('starts with 201 and controls the session, 409 when the state does not allow it', async () => {
    const control = createFakeControl();
    expect(await post(control, '/api/training/pause')).toMatchObject({ status: 409, body: { error: { code: 'CONFLICT', message: expect.stringMatching(/no session/) } } });
    const started = await post(control, '/api/training/start', JSON.stringify({ model: 'mlp', optimizer: 'sgd', learningRate: 0.05, batchSize: 64, rounds: 100 }));
    expect(started).toMatchObject({ status: 201, body: { state: 'running', config: { model: 'mlp', batchSize: 64, maxRounds: 100, optimizer: { name: 'sgd', learningRate: 0.05 } } } });
    expect((await post(control, '/api/training/start', '{}')).status).toBe(409);
    expect(await post(control, '/api/training/pause')).toMatchObject({ status: 200, body: { state: 'paused' } });
    expect(await post(control, '/api/training/resume')).toMatchObject({ status: 200, body: { state: 'running' } });
    expect(await post(control, '/api/training/stop')).toMatchObject({ status: 200, body: { state: 'stopped' } });
    expect((await post(control, '/api/training/stop')).status).toBe(409);
  });

  it('answers bad input with 400 and the reason from the input schema', async () => {
    const control = createFakeControl();
    const badModel = await post(control, '/api/training/start', JSON.stringify({ model: 'transformer' }));
    expect(badModel).toMatchObject({ status: 400, body: { error: { code: 'BAD_REQUEST', message: expect.stringMatching(/^invalid body: model: /) } } });
    const unknownField = await post(control, '/api/training/start', JSON.stringify({ epochs: 3 }));
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.error.message).toMatch(/epochs/);
    const badLr = await post(control, '/api/training/start', JSON.stringify({ learningRate: -1 }));
    expect(badLr.body.error.message).toMatch(/learningRate/);
    const notJson = await post(control, '/api/training/start', '{"model":');
    expect(notJson).toMatchObject({ status: 400, body: { error: { code: 'BAD_REQUEST', message: expect.stringMatching(/not valid JSON/) } } });
    const notObject = await post(control, '/api/training/start', '[1,2]');
    expect(notObject.status).toBe(400);
    expect(control.data.session).toBeNull();

    // A node is found by id or by name: a word is a name (unknown here: 404); a number must be a positive integer.
    const word = await get(control, '/api/nodes/abc');
    expect(word).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND', message: expect.stringMatching(/node "abc" is not known/) } } });
    expect((await get(control, '/api/nodes/node-2')).body).toMatchObject({ id: 2, name: 'node-2' });
    expect((await get(control, '/api/nodes/0')).body.error.message).toMatch(/path parameter id: /);
    expect((await get(control, `/api/nodes/${'x'.repeat(65)}`)).status).toBe(400);
    expect((await get(control, '/api/nodes/1.5')).status).toBe(400);
    expect((await get(control, '/api/sessions/x/rounds')).body.error.message).toMatch(/path parameter sessionId/);
    const limit = await get(control, '/api/metrics?limit=0');
    expect(limit).toMatchObject({ status: 400, body: { error: { message: expect.stringMatching(/query parameter limit: .*1/) } } });
    expect((await get(control, '/api/metrics?limit=')).status).toBe(400);
    expect((await get(control, '/api/metrics?since=-1')).status).toBe(400);
    expect((await get(control, '/api/metrics?limit=100001')).status).toBe(400);
  });

  it('answers unknown ids with 404, unknown paths with 404 and wrong methods with 405 and Allow', async () => {
    const control = createFakeControl();
    expect(await get(control, '/api/nodes/9999')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND', message: 'node 9999 is not known to this coordinator' } } });
    expect(await get(control, '/api/sessions/77')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    expect((await get(control, '/api/sessions/77/events')).status).toBe(404);
    expect((await get(control, '/api/sessions/77/ledger')).status).toBe(404);
    expect(await get(control, '/api/nope')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND', message: expect.stringMatching(/no endpoint \/api\/nope/) } } });
    expect((await get(control, '/api')).status).toBe(404);
    const wrong = await request(control, 'DELETE', '/api/status');
    expect(wrong).toMatchObject({ status: 405, body: { error: { code: 'METHOD_NOT_ALLOWED' } } });
    expect(wrong.headers.allow).toBe('GET, HEAD');
    const getStart = await get(control, '/api/training/start');
    expect(getStart.status).toBe(405);
    expect(getStart.headers.allow).toBe('POST');
    expect((await post(control, '/health')).status).toBe(405);
  });

  it('refuses operator procedures without the credential (401) or with a wrong one (403), before reading the body', async () => {
    const control = createFakeControl();
    const anonymous: RestAccess = { caller: () => ({ kind: 'anonymous' }), privateReads: false };
    const wrong: RestAccess = { caller: () => ({ kind: 'invalid', why: 'the bearer token is not the admin token' }), privateReads: false };
    const none = await request(control, 'POST', '/api/training/start', '{}', anonymous);
    expect(none).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED', message: expect.stringMatching(/\/sign-in.*Bearer/) } } });
    // Not even parsed: a refused caller costs no JSON parsing.
    expect((await request(control, 'POST', '/api/training/start', '{"model":', anonymous)).status).toBe(401);
    expect(await request(control, 'POST', '/api/training/stop', undefined, wrong)).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN', message: expect.stringMatching(/not the admin token/) } } });
    expect(control.data.session).toBeNull();
    // Reads stay public, unless reads are private.
    expect((await request(control, 'GET', '/api/status', undefined, anonymous)).status).toBe(200);
    expect((await request(control, 'GET', '/api/status', undefined, { ...anonymous, privateReads: true })).status).toBe(401);
    expect((await request(control, 'GET', '/api/status', undefined, { ...OPERATOR, privateReads: true })).status).toBe(200);
  });

  it('answers HEAD like GET without a body', async () => {
    const head = await request(createFakeControl(), 'HEAD', '/health');
    expect(head.status).toBe(200);
    expect(head.raw).toBe('');
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
  });

  it('refuses bodies over 1 MiB with 413', async () => {
    const control = createFakeControl();
    const big = JSON.stringify({ model: 'mlp', dataset: 'x'.repeat(1024 * 1024) });
    expect(await post(control, '/api/training/start', big)).toMatchObject({ status: 413, body: { error: { code: 'PAYLOAD_TOO_LARGE' } } });
  });

  it('lists datasets by id, and refuses a dataset given as a path with 400 that does not echo it', async () => {
    const control = createFakeControl();
    expect(await get(control, '/api/datasets')).toMatchObject({ status: 200, body: { datasets: [{ id: 'mnist', trainSize: 60_000 }] } });
    for (const dataset of ['folder:/home/me/data', '/etc/passwd', '../x', 'a b']) {
      const refused = await post(control, '/api/training/start', JSON.stringify({ dataset }));
      expect(refused.status, dataset).toBe(400);
      expect(refused.body.error.message).toMatch(/dataset must be a registered dataset id \(GET \/api\/datasets lists them\)/);
      expect(refused.raw).not.toContain('/home/me');
      expect(refused.raw).not.toContain('/etc/passwd');
    }
  });

  it('keeps the /api/metrics limit and since behaviour', async () => {
    const control = createFakeControl(1200);
    const all = await get(control, '/api/metrics');
    expect(all.body.history).toHaveLength(1000);
    expect(all.body).toMatchObject({ round: 1200, samples: 128 * 1200 });
    const recent = await get(control, '/api/metrics?limit=2');
    expect(recent.body.history.map((m: { round: number }) => m.round)).toEqual([1199, 1200]);
    const since = await get(control, '/api/metrics?since=3&limit=2');
    expect(since.body.history.map((m: { round: number }) => m.round)).toEqual([4, 5]);
    await get(control, '/api/metrics?sessionId=4&limit=7');
    expect(control.lastMetricsCall).toEqual({ sessionId: 4, limit: 7 });
    // Query parameters the procedure does not declare are ignored, as before.
    expect((await get(control, '/api/metrics?limit=2&verbose=1')).status).toBe(200);
  });

  it('translates domain errors through the error table', async () => {
    const control = createFakeControl();
    control.nodes = () => {
      throw new AdmissionError('STALE_ROUND', 'round 3 is closed');
    };
    expect(await get(control, '/api/nodes')).toMatchObject({ status: 409, body: { error: { code: 'STALE_ROUND', message: 'round 3 is closed' } } });
    control.nodes = () => {
      throw new Error('database is locked');
    };
    expect(await get(control, '/api/nodes')).toMatchObject({ status: 500, body: { error: { code: 'INTERNAL', message: 'database is locked' } } });
  });

  it('answers 500 when a procedure returns something its output schema refuses', async () => {
    const control = createFakeControl();
    control.node = () => ({ id: 1, name: 'half a node' }) as any;
    const answer = await get(control, '/api/nodes/1');
    expect(answer).toMatchObject({ status: 500, body: { error: { code: 'INTERNAL', message: expect.stringMatching(/^nodes\.byId produced output that does not match its schema: status: /) } } });
  });

  it('builds routes from any procedure list: path parameters, query numbers, static paths first', () => {
    const echo = defineQuery({
      input: z.object({ id: z.number(), name: z.string(), limit: z.number().optional() }),
      output: z.object({ id: z.number(), name: z.string() }),
      rest: { method: 'GET', path: '/api/things/:id/:name', query: ['limit'] },
      resolve: ({ input }) => input,
    });
    const stat = defineQuery({ input: null, output: z.null(), rest: { method: 'GET', path: '/api/things/all/:name' }, resolve: () => null });
    const routes = restRoutes([
      { path: 'things.echo', definition: echo },
      { path: 'things.all', definition: stat },
    ]);
    expect(routes.map((r) => r.procedure)).toEqual(['things.all', 'things.echo']);
    expect(routes[1].params).toEqual(['id', 'name']);
    expect([...routes[1].numeric].sort()).toEqual(['id', 'limit']);
    expect(routes[1].pattern.exec('/api/things/7/abc')?.slice(1)).toEqual(['7', 'abc']);
    expect(() => restRoutes([{ path: 'x', definition: { ...stat, kind: 'subscription' } as any }])).toThrow(/subscription/);
  });
});
