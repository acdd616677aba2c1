// The REST endpoints of the original design, for scripts and curl. JSON in, JSON out, errors as
// { error: { code, message } } with a meaningful status. Same validation as the tRPC procedures.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { HyperGpuError } from '../../protocol/errors';
import { startTrainingInput } from './inputs';
import { toSessionConfigInput } from './session-config-input';
import type { TrainingControl } from '../services/training-control';

const MAX_BODY_BYTES = 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Handler = (ctx: { control: TrainingControl; params: string[]; query: URLSearchParams; body: () => Promise<unknown> }) => Promise<unknown> | unknown;

function boundedInt(raw: string | null, name: string, min: number, max: number): number | undefined {
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new HttpError(400, 'BAD_REQUEST', `${name} must be an integer from ${min} to ${max} (got "${raw}")`);
  return n;
}

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  status?: number;
  handler: Handler;
}

const positiveId = (raw: string, what: string): number => {
  const id = Number(raw);
  if (!Number.isSafeInteger(id) || id <= 0) throw new HttpError(400, 'BAD_REQUEST', `${what} id must be a positive integer (got "${raw}")`);
  return id;
};

const routes: Route[] = [
  {
    method: 'GET',
    pattern: /^\/api\/status$/,
    handler: ({ control }) => {
      const s = control.status();
      return { state: s.state, sessionId: s.sessionId, round: s.round, modelVersion: s.modelVersion, nodes: s.nodes, session: s.session };
    },
  },
  { method: 'GET', pattern: /^\/api\/nodes$/, handler: ({ control }) => ({ nodes: control.nodes() }) },
  {
    method: 'GET',
    pattern: /^\/api\/nodes\/([^/]+)$/,
    handler: ({ control, params }) => {
      const id = positiveId(params[0], 'node');
      const node = control.node(id);
      if (!node) throw new HttpError(404, 'NOT_FOUND', `node ${id} is not known to this coordinator`);
      return node;
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/metrics$/,
    handler: async ({ control, query }) => {
      // The history grows by one point a round: scripts get the last `limit` points (default 1000), or those
      // after round `since`, instead of megabytes on every poll.
      const limit = boundedInt(query.get('limit'), 'limit', 1, 100_000) ?? 1000;
      const since = boundedInt(query.get('since'), 'since', 0, Number.MAX_SAFE_INTEGER);
      const { latest, history: all } = await control.metrics(undefined, since === undefined ? limit : 100_000);
      const history = since === undefined ? all : all.filter((m) => m.round > since).slice(0, limit);
      const lastEval = [...all].reverse().find((m) => m.testAccuracy !== null) ?? null;
      return {
        sessionId: control.status().sessionId,
        round: latest?.round ?? 0,
        loss: latest?.trainLoss ?? null,
        accuracy: lastEval?.testAccuracy ?? null,
        testLoss: lastEval?.testLoss ?? null,
        samples: latest?.totalSamples ?? 0,
        samplesPerSecond: latest?.samplesPerSecond ?? 0,
        history,
      };
    },
  },
  { method: 'GET', pattern: /^\/api\/sessions$/, handler: async ({ control }) => ({ sessions: await control.sessions(100) }) },
  {
    method: 'GET',
    pattern: /^\/api\/sessions\/([^/]+)$/,
    handler: async ({ control, params }) => {
      const id = positiveId(params[0], 'session');
      const session = await control.session(id);
      if (!session) throw new HttpError(404, 'NOT_FOUND', `session ${id} does not exist`);
      return session;
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/sessions\/([^/]+)\/(contributions|rounds|checkpoints)$/,
    handler: async ({ control, params }) => {
      const id = positiveId(params[0], 'session');
      if (!(await control.session(id))) throw new HttpError(404, 'NOT_FOUND', `session ${id} does not exist`);
      const kind = params[1] as 'contributions' | 'rounds' | 'checkpoints';
      return { [kind]: await control[kind](id) };
    },
  },
  {
    method: 'GET',
    pattern: /^\/api\/sessions\/([^/]+)\/ledger$/,
    handler: ({ control, params }) => control.ledger(positiveId(params[0], 'session')),
  },
  {
    method: 'GET',
    pattern: /^\/api\/sessions\/([^/]+)\/events$/,
    handler: async ({ control, params }) => {
      const id = positiveId(params[0], 'session');
      if (!(await control.session(id))) throw new HttpError(404, 'NOT_FOUND', `session ${id} does not exist`);
      return { events: await control.sessionEvents(id) };
    },
  },
  {
    method: 'POST',
    pattern: /^\/api\/training\/start$/,
    status: 201,
    handler: async ({ control, body }) => {
      const raw = (await body()) ?? {};
      const parsed = startTrainingInput.safeParse(raw);
      if (!parsed.success) throw new HttpError(400, 'BAD_REQUEST', describeIssues(parsed.error));
      return control.start(toSessionConfigInput(parsed.data));
    },
  },
  { method: 'POST', pattern: /^\/api\/training\/pause$/, handler: ({ control }) => control.pause() },
  { method: 'POST', pattern: /^\/api\/training\/resume$/, handler: ({ control }) => control.resume() },
  { method: 'POST', pattern: /^\/api\/training\/stop$/, handler: ({ control }) => control.stop() },
];

function describeIssues(error: z.ZodError): string {
  return `invalid body: ${error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`;
}

/** Handles /health and /api/*; returns false for any other path so the caller can pass it on. */
export async function handleRest(req: IncomingMessage, res: ServerResponse, control: TrainingControl, startedAt: number): Promise<boolean> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  if (path === '/health') {
    send(res, 200, { status: 'ok', uptimeSeconds: Math.round((Date.now() - startedAt) / 1000), state: control.status().state });
    return true;
  }
  if (!path.startsWith('/api/') && path !== '/api') return false;
  try {
    const matching = routes.filter((r) => r.pattern.test(path));
    if (matching.length === 0) throw new HttpError(404, 'NOT_FOUND', `no endpoint ${path}; see README.md for the API`);
    const route = matching.find((r) => r.method === req.method);
    if (!route) {
      res.setHeader('Allow', matching.map((r) => r.method).join(', '));
      throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}; use ${matching.map((r) => r.method).join(' or ')}`);
    }
    const params = route.pattern.exec(path)!.slice(1);
    const result = await route.handler({ control, params, query: url.searchParams, body: () => readJsonBody(req) });
    send(res, route.status ?? 200, result);
  } catch (error) {
    sendError(res, error);
  }
  return true;
}

function sendError(res: ServerResponse, error: unknown): void {
  if (error instanceof HttpError) return send(res, error.status, { error: { code: error.code, message: error.message } });
  if (error instanceof HyperGpuError) {
    const status = error.code === 'NOT_FOUND' ? 404 : error.code === 'CONFLICT' ? 409 : 400;
    return send(res, status, { error: { code: error.code, message: error.message } });
  }
  const message = error instanceof Error ? error.message : String(error);
  send(res, 500, { error: { code: 'INTERNAL', message } });
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, 'BAD_REQUEST', `body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), 'cache-control': 'no-store' });
  res.end(json);
}
