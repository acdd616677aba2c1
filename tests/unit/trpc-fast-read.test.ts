// The fast path for tRPC GET queries against tRPC's own HTTP handler, over real sockets: for every request the
// two servers must answer with the same status and the same body (success, batch, input, errors, and what the
// fast path hands over: mutations, unknown procedures, bad input, streaming batches).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { initTRPC, TRPCError } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFastQueryHandler } from '../../src/server/api/trpc-fast-read';

const t = initTRPC.context<{ calls: number[] }>().create();
const router = t.router({
  status: t.procedure.query(() => ({ ok: true, round: 7, loss: 0.25, nothing: null })),
  echo: t.procedure.input(z.object({ n: z.number().int() })).query(({ input }) => ({ twice: input.n * 2 })),
  missing: t.procedure.query(() => {
    throw new TRPCError({ code: 'NOT_FOUND', message: 'session 3 does not exist' });
  }),
  nested: t.router({ inner: t.procedure.query(() => 'deep') }),
  bump: t.procedure.mutation(() => 1),
});

const counted: number[] = [];
const createContext = () => ({ calls: counted });
const standard = createHTTPHandler({ router, createContext, basePath: '/trpc/' });
let fallbacks = 0;
const fast = createFastQueryHandler({
  router,
  basePath: '/trpc/',
  createContext,
  fallback: (req, res) => {
    fallbacks++;
    standard(req, res);
  },
});

let servers: Server[] = [];
let bases: string[] = [];

beforeAll(async () => {
  servers = [createServer(standard), createServer(fast)];
  bases = await Promise.all(
    servers.map((s) => new Promise<string>((resolve) => s.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)))),
  );
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

async function both(path: string, init?: RequestInit): Promise<{ status: number; body: string }[]> {
  return Promise.all(
    bases.map(async (base) => {
      const response = await fetch(`${base}${path}`, init);
      return { status: response.status, body: await response.text() };
    }),
  );
}

describe('tRPC fast GET path', () => {
  it.each([
    ['/trpc/status'],
    ['/trpc/nested.inner'],
    [`/trpc/echo?input=${encodeURIComponent(JSON.stringify({ n: 21 }))}`],
    [`/trpc/status,echo?batch=1&input=${encodeURIComponent(JSON.stringify({ 1: { n: 4 } }))}`],
    ['/trpc/missing'],
    [`/trpc/echo?input=${encodeURIComponent(JSON.stringify({ n: 'x' }))}`],
    ['/trpc/echo?input=%7Bnot-json'],
    ['/trpc/nope'],
    ['/trpc/bump'],
    ['/trpc/status,missing?batch=1'],
  ])('%s answers as tRPC does', async (path) => {
    const [a, b] = await both(path);
    expect(b.status).toBe(a.status);
    expect(JSON.parse(b.body)).toEqual(JSON.parse(a.body));
  });

  it('serves a plain query itself (tRPC envelope) and leaves streaming batches and POSTs to tRPC', async () => {
    const before = fallbacks;
    const [, b] = await both('/trpc/status');
    await both(`/trpc/status,echo?batch=1&input=${encodeURIComponent(JSON.stringify({ 1: { n: 4 } }))}`);
    expect(fallbacks).toBe(before);
    expect(JSON.parse(b.body)).toEqual({ result: { data: { ok: true, round: 7, loss: 0.25, nothing: null } } });
    await both('/trpc/missing');
    expect(fallbacks).toBe(before + 1);
    const [sa, sb] = await both('/trpc/status?batch=1', { headers: { 'trpc-accept': 'application/jsonl' } });
    expect(sb).toEqual(sa);
    const [pa, pb] = await both('/trpc/bump', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(pb).toEqual(pa);
  });
});
