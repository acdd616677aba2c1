// The OpenAPI document at /api/openapi.json, checked against the facade it describes: every documented operation
// is called (against the fake control) and must answer a documented status with a body that fits the documented
// schema; invalid input gets the documented 400 with the input schema's reason, an unknown id the documented 404,
// and operator operations say so (bearer) and refuse an anonymous caller.
import { fakeTimelines } from '../support/fake-audit-store';
import { Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jsonSchemaOf } from '../../src/server/api/openapi';
import { handleRest, type RestAccess } from '../../src/server/api/rest';
import type { ApiContext } from '../../src/server/api/procedure';
import { JoinTokens } from '../../src/server/services/join-tokens';
import { createFakeControl, type FakeControl } from '../support/fake-control';
import { createFakeRepository } from '../support/fake-repository';
import { FakeClock, fakeCredentials } from '../support/fakes';
import { checkJsonSchema } from '../support/json-schema-check';
import { createFakeRewardsRepository, SEEDED_ADDRESS, seedSettlement } from '../support/fake-rewards';
import { RewardsService } from '../../src/server/services/rewards';

const OPERATOR: RestAccess = { caller: () => ({ kind: 'operator', via: 'token' }), privateReads: false };
const ANONYMOUS: RestAccess = { caller: () => ({ kind: 'anonymous' }), privateReads: false };

/** Bodies for operations whose input has required fields ('{}' for the rest). */
const BODIES: Record<string, string> = { 'nodes.banAddress': JSON.stringify({ address: '192.0.2.7', seconds: 60 }) };
/** The gateway's address bans, recorded. */
const banned: string[] = [];
const ADDRESS_BANS: ApiContext['operations'] = { banAddress: (address) => (banned.push(address), 0) };

interface Answer {
  status: number;
  headers: Record<string, string | number>;
  body: any;
}

function setup() {
  const control = createFakeControl();
  const joinTokens = new JoinTokens(createFakeRepository(), fakeCredentials(), new FakeClock(), false);
  const timelines = fakeTimelines();
  const rewardsRepo = createFakeRewardsRepository();
  const rewards = new RewardsService(rewardsRepo, null, () => null);
  const call = async (method: string, url: string, body?: string, access: RestAccess = OPERATOR, operations?: ApiContext['operations']): Promise<Answer> => {
    const req = Readable.from(body === undefined ? [] : [Buffer.from(body)]) as unknown as IncomingMessage;
    Object.assign(req, { method, url, headers: {} });
    const answer: Answer = { status: 0, headers: {}, body: undefined };
    let raw: string | Uint8Array = '';
    const res = {
      setHeader: (name: string, value: string) => (answer.headers[name.toLowerCase()] = value),
      writeHead(status: number, headers: Record<string, string | number>) {
        answer.status = status;
        for (const [k, v] of Object.entries(headers)) answer.headers[k.toLowerCase()] = v;
      },
      end: (text?: string | Uint8Array) => (raw = text ?? ''),
    } as unknown as ServerResponse;
    expect(await handleRest(req, res, control, Date.now(), access, joinTokens, { operations, timelines, rewards }), `${method} ${url} handled`).toBe(true);
    if (typeof raw !== 'string') answer.body = raw;
    else if (raw) answer.body = JSON.parse(raw);
    return answer;
  };
  return { control, call, rewardsRepo };
}

interface Operation {
  path: string;
  method: string;
  op: any;
}

function operations(doc: any): Operation[] {
  return Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods as object).map(([method, op]) => ({ path, method, op })));
}

/** The answer fits the document: a documented status, and a body that fits that status's schema. */
function expectDocumented(doc: any, { path, method, op }: Operation, answer: Answer): void {
  const label = `${method.toUpperCase()} ${path} → ${answer.status} ${JSON.stringify(answer.body)?.slice(0, 200)}`;
  const documented = op.responses[String(answer.status)];
  expect(documented, `${label}: status not documented`).toBeDefined();
  const json = documented.content['application/json'];
  if (json) {
    expect(answer.headers['content-type'], label).toMatch(/^application\/json/);
    expect(checkJsonSchema(json.schema, answer.body, doc), label).toEqual([]);
    return;
  }
  // Bytes: the one media type documented, and a body of bytes of the length the header says.
  const [mediaType] = Object.keys(documented.content);
  expect(answer.headers['content-type'], label).toBe(mediaType);
  expect(answer.body, label).toBeInstanceOf(Uint8Array);
  expect(answer.headers['content-length']).toBe((answer.body as Uint8Array).byteLength);
}

describe('OpenAPI document at /api/openapi.json', () => {
  it('is OpenAPI 3.1 and documents every REST route with its parameters, body, responses and security', async () => {
    const { call } = setup();
    const answer = await call('GET', '/api/openapi.json', undefined, ANONYMOUS);
    expect(answer.status).toBe(200);
    const doc = answer.body;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/health', '/api/status', '/api/nodes/{id}', '/api/sessions/{sessionId}/rounds', '/api/training/start']));
    const rounds = doc.paths['/api/sessions/{sessionId}/rounds'].get;
    expect(rounds.parameters.map((p: any) => `${p.in}:${p.name}`)).toEqual(['path:sessionId', 'query:afterRound', 'query:rounds']);
    expect(rounds.parameters[2].schema).toMatchObject({ type: 'integer', maximum: 10_000 });
    expect(rounds.responses['200'].content['application/json'].schema).toMatchObject({ type: 'object', required: ['rounds'], properties: { rounds: { type: 'array' } } });
    expect(Object.keys(rounds.responses).sort()).toEqual(['200', '400', '404']);
    expect(rounds.security).toEqual([]);
    const start = doc.paths['/api/training/start'].post;
    expect(Object.keys(start.responses).sort()).toEqual(['201', '400', '401', '403', '409']);
    expect(start.security).toEqual([{ bearer: [] }]);
    expect(start.requestBody.content['application/json'].schema.properties.model).toEqual({ type: 'string', enum: ['mlp', 'cnn', 'mlp2nn'] });
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    // Measurements accept NaN; JSON writes it as null, and the document says number | null.
    const loss = rounds.responses['200'].content['application/json'].schema.properties.rounds.items.properties.trainLoss;
    expect(checkJsonSchema(loss, null)).toEqual([]);
    expect(checkJsonSchema(loss, 0.5)).toEqual([]);
    expect(checkJsonSchema(loss, 'x')).not.toEqual([]);
  });

  it('every documented operation answers as documented', async () => {
    const { call, rewardsRepo } = setup();
    await seedSettlement(rewardsRepo);
    const doc = (await call('GET', '/api/openapi.json')).body;
    // Start first (the session-scoped reads need a session), then reads, then the other mutations in order.
    const rank = (o: Operation) => (o.path === '/api/training/start' ? 0 : o.method === 'get' ? 1 : 2);
    const ops = operations(doc).sort((a, b) => rank(a) - rank(b));
    expect(ops.length).toBeGreaterThanOrEqual(20);
    let joinTokenId = 0;
    for (const operation of ops) {
      const { path, method, op } = operation;
      const ids: Record<string, number> = { sessionId: 1, round: 2, id: path.startsWith('/api/join-tokens') ? joinTokenId : 1 };
      // Required query parameters get values the seeded rewards answer (the address paid in settlement 1).
      const queryValues: Record<string, string> = { address: SEEDED_ADDRESS, seq: '1' };
      const required = ((op.parameters ?? []) as any[]).filter((p) => p.in === 'query' && p.required).map((p) => `${p.name}=${queryValues[p.name]}`);
      const url = path.replace(/\{(\w+)\}/g, (_, name: string) => String(ids[name])) + (required.length ? `?${required.join('&')}` : '');
      const answer = await call(method.toUpperCase(), url, op.requestBody ? (BODIES[op.operationId] ?? '{}') : undefined, OPERATOR, ADDRESS_BANS);
      expectDocumented(doc, operation, answer);
      const success = Object.keys(op.responses).find((s) => s.startsWith('2'));
      expect(String(answer.status), `${method} ${url}: ${JSON.stringify(answer.body)}`).toBe(success);
      if (path === '/api/join-tokens' && method === 'post') joinTokenId = answer.body.joinToken.id;
    }
  });

  it('invalid input gets the documented 400 with the input schema’s reason; an unknown id the documented 404', async () => {
    const { call } = setup();
    const doc = (await call('GET', '/api/openapi.json')).body;
    let checked400 = 0;
    let checked404 = 0;
    for (const operation of operations(doc)) {
      const { path, method, op } = operation;
      const params: any[] = op.parameters ?? [];
      for (const param of params.filter((p) => p.schema.type === 'integer' || p.schema.type === 'number')) {
        const bad = param.in === 'path' ? path.replace(`{${param.name}}`, 'abc').replace(/\{\w+\}/g, '1') : `${path.replace(/\{\w+\}/g, '1')}?${param.name}=abc`;
        const answer = await call(method.toUpperCase(), bad, op.requestBody ? '{}' : undefined);
        expect(answer.status, `${method} ${bad}`).toBe(400);
        expect(answer.body.error.message).toMatch(new RegExp(`${param.in} parameter ${param.name}: .*number`));
        expectDocumented(doc, operation, answer);
        checked400++;
      }
      if (op.requestBody) {
        const answer = await call(method.toUpperCase(), path.replace(/\{\w+\}/g, '1'), JSON.stringify({ noSuchField: 1 }));
        expect(answer.status, `${method} ${path} with an unknown field`).toBe(400);
        expect(answer.body.error.message).toMatch(/^invalid body: .*noSuchField/);
        expectDocumented(doc, operation, answer);
        checked400++;
      }
      if (params.some((p) => p.in === 'path')) {
        const unknown = path.replace(/\{\w+\}/g, '987654');
        const answer = await call(method.toUpperCase(), unknown, op.requestBody ? '{}' : undefined);
        expect(answer.status, `${method} ${unknown}`).toBe(404);
        expectDocumented(doc, operation, answer);
        checked404++;
      }
    }
    expect(checked400).toBeGreaterThanOrEqual(8);
    expect(checked404).toBeGreaterThanOrEqual(7);
  });

  it('operator operations are marked bearer and refuse an anonymous caller with the documented 401', async () => {
    const { call } = setup();
    const doc = (await call('GET', '/api/openapi.json')).body;
    const guarded = operations(doc).filter((o) => o.op.security.length > 0);
    expect(guarded.map((o) => o.op.operationId).sort()).toEqual(
      ['agents.issueJoinToken', 'agents.joinTokens', 'agents.revokeJoinToken', 'nodes.banAddress', 'nodes.kick', 'training.pause', 'training.resume', 'training.start', 'training.stop'].sort(),
    );
    for (const operation of guarded) {
      const answer = await call(operation.method.toUpperCase(), operation.path.replace(/\{\w+\}/g, '1'), undefined, ANONYMOUS);
      expect(answer.status).toBe(401);
      expectDocumented(doc, operation, answer);
    }
    // With private reads, every operation (and the document itself) needs the credential.
    expect((await call('GET', '/api/openapi.json', undefined, { ...ANONYMOUS, privateReads: true })).status).toBe(401);
    const privateDoc = (await call('GET', '/api/openapi.json', undefined, { ...OPERATOR, privateReads: true })).body;
    expect(operations(privateDoc).every((o) => o.op.security.length > 0)).toBe(true);
    expect((await call('POST', '/api/openapi.json')).status).toBe(405);
  });

  it('translates what JSON Schema cannot say on purpose: NaN as null, transforms as their input or output side', () => {
    const measure = z.object({ loss: z.union([z.number(), z.nan(), z.literal([Infinity, -Infinity])]) });
    const schema = jsonSchemaOf(measure, 'output');
    expect(checkJsonSchema(schema, JSON.parse(JSON.stringify({ loss: NaN })))).toEqual([]);
    const transformed = z.string().transform((s) => s.length);
    expect(jsonSchemaOf(transformed, 'input')).toEqual({ type: 'string' });
    expect(jsonSchemaOf(transformed, 'output')).toEqual({}); // any value: the output is still checked by zod on every answer
  });
});
