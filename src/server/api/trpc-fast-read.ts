// tRPC queries over HTTP GET without the fetch round trip. tRPC 11's node adapters (standalone and node-http
// alike) turn every IncomingMessage into a fetch Request and the result into a Response before writing it out;
// measured by bench/api.ts, that conversion made a tRPC read cost 246 us of server CPU against 38 us for the
// same REST read. Here a GET of one or more queries (non-batched, or ?batch=1) calls the procedures directly
// and writes tRPC's own envelope ({"result":{"data":...}}, an array for a batch). Anything else (mutations,
// streaming batches, a procedure that fails or does not exist, input that does not parse) goes to tRPC's
// handler untouched, so error shapes and status codes stay tRPC's; a failed query therefore runs twice, which
// a read may.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AnyRouter } from '@trpc/server';
import { callProcedure, getProcedureAtPath } from '@trpc/server/unstable-core-do-not-import';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function createFastQueryHandler<TContext>(opts: {
  router: AnyRouter;
  /** The path prefix with its trailing slash ("/trpc/"). */
  basePath: string;
  createContext: (o: { req: IncomingMessage; res: ServerResponse }) => TContext | Promise<TContext>;
  fallback: Handler;
}): Handler {
  const { router, basePath, fallback } = opts;
  return (req, res) => {
    const call = parseQueryCall(req, basePath);
    if (!call) return fallback(req, res);
    run(call).then(
      (body) => {
        if (body === null) return fallback(req, res);
        res.writeHead(200, { 'content-type': 'application/json', vary: 'trpc-accept', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      },
      () => fallback(req, res),
    );

    async function run(c: QueryCall): Promise<string | null> {
      const procedures = await Promise.all(c.paths.map((p) => getProcedureAtPath(router, p)));
      if (procedures.some((p) => !p || p._def.type !== 'query')) return null;
      const ctx = await opts.createContext({ req, res });
      const results = await Promise.all(
        c.paths.map((path, i) => callProcedure({ router, path, getRawInput: async () => c.inputs[i], ctx, type: 'query', signal: undefined, batchIndex: i })),
      );
      return JSON.stringify(c.batch ? results.map((data) => ({ result: { data } })) : { result: { data: results[0] } });
    }
  };
}

interface QueryCall {
  batch: boolean;
  paths: string[];
  inputs: unknown[];
}

/** A plain GET of queries, or null for anything the fast path leaves to tRPC. */
export function parseQueryCall(req: IncomingMessage, basePath: string): QueryCall | null {
  // A streaming batch link asks for JSON lines; a method override needs tRPC's rules: both go to tRPC.
  if (req.method !== 'GET' || req.headers['trpc-accept'] !== undefined || !req.url?.startsWith(basePath)) return null;
  const q = req.url.indexOf('?');
  let paths: string;
  let params: URLSearchParams;
  try {
    paths = decodeURIComponent(req.url.slice(basePath.length, q < 0 ? undefined : q));
    params = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
  } catch {
    return null;
  }
  const batch = params.get('batch') === '1';
  const list = batch ? paths.split(',') : [paths];
  if ((!batch && paths.includes(',')) || list.some((p) => p === '')) return null;
  const raw = params.get('input');
  let parsed: unknown;
  try {
    parsed = raw === null ? undefined : JSON.parse(raw);
  } catch {
    return null;
  }
  if (!batch) return { batch, paths: list, inputs: [parsed] };
  if (parsed !== undefined && (typeof parsed !== 'object' || parsed === null)) return null;
  const record = (parsed ?? {}) as Record<string, unknown>;
  return { batch, paths: list, inputs: list.map((_, i) => record[String(i)]) };
}
