// The REST endpoints of the original design, for scripts and curl, served from the same procedure definitions
// as tRPC: each REST binding says which path serves a procedure and where its input comes from (path
// parameters, query parameters, the JSON body); the procedure's own schemas check the input and the output.
// JSON in, JSON out, errors as { error: { code, message } } with the status the error table gives the code.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { HyperGpuError } from '../../protocol/errors';
import { translateError, type TranslatedCode } from '../core/error-table';
import { checkAccess, type Caller } from '../core/operator-access';
import { checkOutput, type ApiContext, type ProcedureDefinition, type RestBinding } from './procedure';
import { buildOpenApi } from './openapi';
import { listRestProcedures, type NamedProcedure } from './procedures';
import type { TrainingControl } from '../services/training-control';

const MAX_BODY_BYTES = 1024 * 1024;

/** A refusal of the REST facade itself (bad input, unknown path, wrong method, body too large). */
export class RestError extends Error {
  constructor(
    readonly code: TranslatedCode,
    message: string,
  ) {
    super(message);
  }
}

export interface RestRoute {
  /** The procedure's tRPC path, for messages. */
  procedure: string;
  definition: ProcedureDefinition;
  binding: RestBinding;
  /** Path parameter names, in order; the pattern captures them in the same order. */
  params: string[];
  pattern: RegExp;
  /** Input fields that are numbers: path and query values are strings, these are converted before validation. */
  numeric: ReadonlySet<string>;
}

/** The REST routes of a set of procedures; routes with fewer path parameters are tried first (static paths win). */
export function restRoutes(procedures: NamedProcedure[] = listRestProcedures()): RestRoute[] {
  const routes: RestRoute[] = [];
  for (const { path, definition } of procedures) {
    const binding = definition.rest;
    if (!binding) continue;
    if (definition.kind === 'subscription') throw new Error(`${path}: a subscription cannot have a REST binding`);
    const params: string[] = [];
    const source = binding.path
      .split('/')
      .map((segment) => {
        if (!segment.startsWith(':')) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        params.push(segment.slice(1));
        return '([^/]+)';
      })
      .join('/');
    routes.push({ procedure: path, definition, binding, params, pattern: new RegExp(`^${source}$`), numeric: numericFields(definition.input) });
  }
  return routes.sort((a, b) => a.params.length - b.params.length);
}

const routes = restRoutes();
/** For each path without parameters, every route that matches it: most requests are found without a regex. */
const byStaticPath = new Map(
  routes.filter((r) => r.params.length === 0).map((r) => [r.binding.path as string, routes.filter((other) => other.pattern.test(r.binding.path))]),
);
const withParams = routes.filter((r) => r.params.length > 0);
/** The OpenAPI document of these routes, built once per reads mode (GET /api/openapi.json, see openapi.ts). */
const OPENAPI_PATH = '/api/openapi.json';
const openApiDocuments = new Map<boolean, string>();
function openApiJson(privateReads: boolean): string {
  let json = openApiDocuments.get(privateReads);
  if (json === undefined) openApiDocuments.set(privateReads, (json = JSON.stringify(buildOpenApi(routes, { privateReads }))));
  return json;
}
const matchingRoutes = (path: string): RestRoute[] => byStaticPath.get(path) ?? withParams.filter((r) => r.pattern.test(path));

/** Who is asking, for procedures that need the operator (see core/operator-access.ts). */
export interface RestAccess {
  caller(): Caller;
  privateReads: boolean;
}

/** Handles /api/* and every path a procedure is bound to (/health); returns false for any other path. */
export async function handleRest(
  req: IncomingMessage,
  res: ServerResponse,
  control: TrainingControl,
  startedAt: number,
  access: RestAccess,
  joinTokens?: ApiContext['joinTokens'],
  extra: Pick<ApiContext, 'operations' | 'health' | 'version' | 'timelines' | 'rewards'> = {},
): Promise<boolean> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const matching = matchingRoutes(path);
  if (matching.length === 0 && path !== '/api' && !path.startsWith('/api/')) return false;
  // HEAD is GET without the body (what a load balancer's health check may send).
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  try {
    if (path === OPENAPI_PATH) {
      serveOpenApi(req, res, method, access);
      return true;
    }
    if (matching.length === 0) throw new RestError('NOT_FOUND', `no endpoint ${path}; see README.md for the API`);
    const route = matching.find((r) => r.binding.method === method);
    if (!route) {
      const allowed = [...new Set(matching.map((r) => r.binding.method))];
      res.setHeader('Allow', (allowed.includes('GET') ? [...allowed, 'HEAD'] : allowed).join(', '));
      throw new RestError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}; use ${allowed.join(' or ')}`);
    }
    // Before the body is read: a caller without the credential costs us no parsing.
    const caller = access.caller();
    checkAccess(route.procedure, route.definition.access, caller, access.privateReads);
    const body = route.binding.body ? await readJsonBody(req) : undefined;
    const ctx: ApiContext = { control, startedAt, caller: () => caller, privateReads: access.privateReads, joinTokens, ...extra };
    const output = await callRoute(route, ctx, route.pattern.exec(path)!.slice(1), url.searchParams, body);
    if (route.binding.contentType) sendBytes(res, route.binding.contentType, output as Uint8Array, req.method === 'HEAD');
    else send(res, route.binding.unhealthy?.(output) ? 503 : (route.binding.status ?? 200), route.binding.envelope ? { [route.binding.envelope]: output } : output, req.method === 'HEAD');
  } catch (error) {
    sendError(res, error);
  }
  return true;
}

/** GET /api/openapi.json: public like every read, unless reads are private. */
function serveOpenApi(req: IncomingMessage, res: ServerResponse, method: string | undefined, access: RestAccess): void {
  if (method !== 'GET') {
    res.setHeader('Allow', 'GET, HEAD');
    throw new RestError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${OPENAPI_PATH}; use GET`);
  }
  checkAccess('openapi', 'public', access.caller(), access.privateReads);
  const json = openApiJson(access.privateReads);
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : json);
}

/** Runs one procedure for a REST request: input from the request, checked; output checked. */
async function callRoute(route: RestRoute, ctx: ApiContext, paramValues: string[], query: URLSearchParams, body: unknown): Promise<unknown> {
  const { definition } = route;
  let input: unknown;
  if (definition.input) {
    const raw = requestInput(route, paramValues, query, body);
    const parsed = definition.input.safeParse(raw);
    if (!parsed.success) throw new RestError('BAD_REQUEST', describeIssues(parsed.error, route));
    input = parsed.data;
  }
  if (definition.kind === 'subscription') throw new RestError('METHOD_NOT_ALLOWED', `${route.procedure} is a subscription`);
  return checkOutput(route.procedure, definition.output, await definition.resolve({ ctx, input }));
}

/** The raw input: the JSON body, path parameters and declared query parameters (numbers where the input has numbers). */
function requestInput(route: RestRoute, paramValues: string[], query: URLSearchParams, body: unknown): unknown {
  const { binding, params, numeric } = route;
  if (params.length === 0 && !binding.query?.length) return body;
  const input: Record<string, unknown> = binding.body && typeof body === 'object' && body !== null ? { ...body } : {};
  const set = (name: string, raw: string) => (input[name] = numeric.has(name) ? toNumber(raw) : raw);
  params.forEach((name, i) => set(name, safeDecode(paramValues[i])));
  for (const name of binding.query ?? []) {
    const value = query.get(name);
    if (value !== null) set(name, value);
  }
  return input;
}

/** A string that reads as a number (Number(), as before) becomes it; anything else stays a string for the schema to refuse. */
function toNumber(raw: string): unknown {
  const n = Number(raw);
  return raw.trim() !== '' && !Number.isNaN(n) ? n : raw;
}

function safeDecode(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

type AnySchema = { _zod: { def: { type: string; innerType?: AnySchema; shape?: Record<string, AnySchema>; options?: AnySchema[] } } };

/**
 * Names of the fields of an object input (optional or not) whose schema is a number, or a union with a number
 * (a node by id or name: "7" is the id 7, "gpu-box" stays a name).
 */
function numericFields(schema: z.ZodType | null): ReadonlySet<string> {
  const unwrap = (s: AnySchema): AnySchema => (s._zod.def.innerType ? unwrap(s._zod.def.innerType) : s);
  const fields = new Set<string>();
  if (!schema) return fields;
  const object = unwrap(schema as unknown as AnySchema);
  const isNumber = (s: AnySchema): boolean => s._zod.def.type === 'number' || (s._zod.def.type === 'union' && (s._zod.def.options ?? []).some((o) => isNumber(unwrap(o))));
  for (const [name, field] of Object.entries(object._zod.def.shape ?? {})) if (isNumber(unwrap(field))) fields.add(name);
  return fields;
}

function describeIssues(error: z.ZodError, route: RestRoute): string {
  const fromBody = route.binding.body === true;
  const label = (path: PropertyKey[]) => {
    const field = String(path[0] ?? '');
    if (route.params.includes(field)) return `path parameter ${path.join('.')}`;
    if (route.binding.query?.includes(field)) return `query parameter ${path.join('.')}`;
    return path.join('.') || (fromBody ? 'body' : 'input');
  };
  return `invalid ${fromBody ? 'body' : 'request'}: ${error.issues.map((issue) => `${label(issue.path)}: ${issue.message}`).join('; ')}`;
}

export function sendError(res: ServerResponse, error: unknown): void {
  const code: string = error instanceof RestError || error instanceof HyperGpuError ? error.code : 'INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  send(res, translateError(code).http, { error: { code, message } });
}

export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new RestError('PAYLOAD_TOO_LARGE', `body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RestError('BAD_REQUEST', `body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function sendBytes(res: ServerResponse, contentType: string, bytes: Uint8Array, headOnly: boolean): void {
  res.writeHead(200, { 'content-type': contentType, 'content-length': bytes.byteLength, 'cache-control': 'no-store' });
  res.end(headOnly ? undefined : bytes);
}

export function send(res: ServerResponse, status: number, body: unknown, headOnly = false, headers: Record<string, string | string[]> = {}): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), 'cache-control': 'no-store' });
  res.end(headOnly ? undefined : json);
}
