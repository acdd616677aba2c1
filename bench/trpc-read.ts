// Server CPU per request of one read, side by side in one run on one idle server (no session, no agents):
// REST GET /api/status, the same read as a tRPC query over HTTP GET /trpc/training.status through the fast
// path (src/server/api/trpc-fast-read.ts), and through tRPC's own handler (forced with `trpc-accept:
// application/json`, which the fast path leaves to tRPC): the before and after of the fast path.
//   npm run bench -- trpc-read            (about 20 seconds)
import http from 'node:http';
import { below, fmt, loadAverage, row, type BenchOptions, type BenchOutcome, type Benchmark } from './lib/common';
import { processCpuSeconds, startServer, type ServerHandle } from './lib/procs';

function get(agent: http.Agent, url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

/** 8 keep-alive clients for `seconds`; server CPU from /proc per request. */
async function cost(server: ServerHandle, path: string, headers: Record<string, string>, seconds: number): Promise<{ cpuUs: number; rps: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let requests = 0;
  const cpu0 = processCpuSeconds(server.pid);
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < end) {
        const status = await get(agent, `${server.baseUrl}${path}`, headers);
        if (status !== 200) throw new Error(`${path}: HTTP ${status}`);
        requests++;
      }
    }),
  );
  const cpu = processCpuSeconds(server.pid) - cpu0;
  agent.destroy();
  return { cpuUs: (cpu * 1e6) / requests, rps: requests / ((performance.now() - started) / 1000) };
}

export const trpcRead: Benchmark = {
  name: 'trpc-read',
  title: 'tRPC read over HTTP vs the same REST read: server CPU per request (fast path, and tRPC\'s own handler)',
  inDefault: true,
  async run({ quick, log }: BenchOptions): Promise<BenchOutcome> {
    const seconds = quick ? 1 : 3;
    const server = await startServer();
    const variants = [
      ['REST GET /api/status', '/api/status', {}],
      ['tRPC GET /trpc/training.status, fast path', '/trpc/training.status', {}],
      ['tRPC GET /trpc/training.status, tRPC handler (before)', '/trpc/training.status', { 'trpc-accept': 'application/json' }],
    ] as const;
    const results: Record<string, { cpuUs: number; rps: number }> = {};
    try {
      for (const [, path, headers] of variants) await cost(server, path, headers, 1); // warm-up
      // Interleaved rounds, so load that comes and goes hits every variant alike; the median per variant.
      const rounds = quick ? 1 : 3;
      const samples: Record<string, number[]> = {};
      for (let r = 0; r < rounds; r++) {
        for (const [name, path, headers] of variants) {
          const c = await cost(server, path, headers, seconds);
          (samples[name] ??= []).push(c.cpuUs);
          results[name] = c;
        }
      }
      for (const [name] of variants) {
        const sorted = [...samples[name]].sort((a, b) => a - b);
        results[name] = { ...results[name], cpuUs: sorted[sorted.length >> 1] };
        log(`${name}: ${fmt(results[name].cpuUs, 0)} µs of server CPU per request`);
      }
    } finally {
      await server.stop();
    }
    const rest = results[variants[0][0]].cpuUs;
    const fast = results[variants[1][0]].cpuUs;
    const before = results[variants[2][0]].cpuUs;
    return {
      rows: [
        row('tRPC read / REST read, server CPU per request', `${fmt(fast / rest, 2)}x (${fmt(fast, 0)} vs ${fmt(rest, 0)} µs)`, fast / rest, 'x', '<= 2x', below(fast / rest, 2.0001, 'x'), `through tRPC's own handler (before): ${fmt(before, 0)} µs = ${fmt(before / rest, 2)}x; load ${loadAverage().join(' / ')}`),
      ],
      notes: [
        'One idle server (no session, no agents), 8 keep-alive clients per variant, server CPU (utime + stime from /proc) divided by requests; variants interleaved, median of the rounds.',
        'tRPC 11\'s node adapters (standalone and node-http) both convert each request to a fetch Request and back: switching adapter does not remove the cost, so GET queries are served by calling the procedures directly (trpc-fast-read.ts); mutations, streaming batches and errors still go through tRPC.',
      ],
      details: { results },
    };
  },
};
