// API reads under load: 50 concurrent keep-alive clients (this process, node:http) for 10 s against the REST
// reads (GET /api/status, /api/nodes, /api/metrics) and a tRPC query over HTTP (GET /trpc/training.status),
// round-robin, while a session trains with 2 real agents. Latency per request from the request to the last
// byte of the body. Also: how much the load slowed training down.
//   npm run bench -- api                   (about a minute)
import os from 'node:os';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { below, fmt, fmtMs, percentile, row, sleep, summarize, type BenchOptions, type BenchOutcome, type Benchmark, type Row } from './lib/common';
import { processCpuSeconds, requestJson, scrapeMetrics, spawnAgent, startServer, startSession, waitForNodes, type AgentHandle, type ServerHandle } from './lib/procs';
import { statusSample, warmUp } from './lib/training';

const ENDPOINTS = ['/api/status', '/api/nodes', '/api/metrics', '/trpc/training.status'] as const;
const CLIENTS = 50;

function timedGet(agent: http.Agent, url: string): Promise<{ ms: number; bytes: number; status: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.get(url, { agent }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ ms: performance.now() - started, bytes, status: res.statusCode ?? 0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

interface LoadResult {
  latencies: Record<string, number[]>;
  bytes: Record<string, number>;
  errors: number;
  requests: number;
  seconds: number;
}

/**
 * CLIENTS concurrent clients for `seconds` (after `warmupS` unrecorded). Closed loop (intervalMs 0): each client
 * sends its next request as soon as the last is answered, so the load is whatever the server sustains. Open loop
 * (intervalMs > 0): each client sends one request every intervalMs, latency counted from the scheduled time
 * (a request that had to wait for the previous one counts the wait).
 */
export async function loadReads(baseUrl: string, seconds: number, warmupS: number, intervalMs = 0): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const latencies: Record<string, number[]> = Object.fromEntries(ENDPOINTS.map((e) => [e, [] as number[]]));
  const bytes: Record<string, number> = Object.fromEntries(ENDPOINTS.map((e) => [e, 0]));
  let errors = 0;
  let requests = 0;
  const started = performance.now();
  const recordFrom = started + warmupS * 1000;
  const end = recordFrom + seconds * 1000;
  const worker = async (index: number) => {
    let scheduled = started + (intervalMs > 0 ? Math.random() * intervalMs : 0);
    for (let k = index; scheduled < end; k++) {
      const endpoint = ENDPOINTS[k % ENDPOINTS.length];
      if (intervalMs > 0) {
        const wait = scheduled - performance.now();
        if (wait > 0) await sleep(wait);
      } else {
        scheduled = performance.now();
      }
      try {
        const r = await timedGet(agent, `${baseUrl}${endpoint}`);
        if (r.status !== 200) errors++;
        if (scheduled >= recordFrom) {
          latencies[endpoint].push(performance.now() - scheduled);
          bytes[endpoint] = r.bytes;
          requests++;
        }
      } catch {
        errors++;
      }
      if (intervalMs > 0) scheduled += intervalMs;
      else scheduled = performance.now();
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, i) => worker(i)));
  agent.destroy();
  return { latencies, bytes, errors, requests, seconds: (performance.now() - recordFrom) / 1000 };
}

/** Server CPU per request for one endpoint: 8 keep-alive clients for `seconds`, server CPU from /proc. */
async function serverCostPerRequest(server: ServerHandle, endpoint: string, seconds: number): Promise<{ requestsPerSecond: number; cpuUsPerRequest: number; bytes: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let requests = 0;
  let bytes = 0;
  const cpu0 = processCpuSeconds(server.pid);
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (performance.now() < end) {
        const r = await timedGet(agent, `${server.baseUrl}${endpoint}`);
        requests++;
        bytes = r.bytes;
      }
    }),
  );
  const cpu = processCpuSeconds(server.pid) - cpu0;
  agent.destroy();
  return { requestsPerSecond: requests / ((performance.now() - started) / 1000), cpuUsPerRequest: (cpu * 1e6) / requests, bytes };
}

/** A latency row: its p50, p95 and p99, the p95 as its value (against a target in ms when there is one). */
function latencyRow(metric: string, s: { p50: number; p95: number; p99: number }, target: { label: string; ms: number } | null, note: string): Row {
  return row(metric, `p50 ${fmtMs(s.p50)}, p95 ${fmtMs(s.p95)}, p99 ${fmtMs(s.p99)}`, s.p95, 'ms (p95)', target?.label ?? '', target ? below(s.p95, target.ms, ' ms') : undefined, note);
}

/** Loop delay percentiles in ms (the delay past the sampling interval). */
interface LoopDelay {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * Runs `work` and reports, over the same time, the event loop delay of the server (prom-client's histogram on
 * /metrics, which it resets at each scrape: one scrape before, one after) and of this process, the load generator
 * (a request it sends late counts as latency, so its own delays are part of what the benchmark measures).
 */
async function withLoopDelays<T>(baseUrl: string, work: () => Promise<T>): Promise<{ result: T; server: LoopDelay | null; client: LoopDelay }> {
  await scrapeLoopDelay(baseUrl);
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const result = await work();
  histogram.disable();
  const ms = (ns: number) => Math.max(0, ns / 1e6 - 1);
  const client = { p50: ms(histogram.percentile(50)), p90: ms(histogram.percentile(90)), p99: ms(histogram.percentile(99)), max: ms(histogram.max) };
  return { result, server: await scrapeLoopDelay(baseUrl), client };
}

/** prom-client samples the loop every 10 ms (monitorEventLoopDelay): its figures include the 10 ms, taken off here. */
async function scrapeLoopDelay(baseUrl: string): Promise<LoopDelay | null> {
  const text = await scrapeMetrics(baseUrl).catch(() => ''); // no figures rather than no benchmark
  const value = (name: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`hypergpu_nodejs_eventloop_lag_${name}_seconds `));
    return line ? Math.max(0, Number(line.split(' ').pop()) * 1000 - 10) : NaN;
  };
  const delay = { p50: value('p50'), p90: value('p90'), p99: value('p99'), max: value('max') };
  return Object.values(delay).every(Number.isFinite) ? delay : null;
}

function delayNote(d: { server: LoopDelay | null; client: LoopDelay }): string {
  const server = d.server ? `p50 ${fmtMs(d.server.p50)}, p90 ${fmtMs(d.server.p90)}, p99 ${fmtMs(d.server.p99)}, max ${fmtMs(d.server.max)}` : 'not on /metrics';
  return `the server's event loop was late by ${server}; the load generator's by p50 ${fmtMs(d.client.p50)}, p99 ${fmtMs(d.client.p99)}`;
}

/** Sets the nice value of every thread of `pid` (setpriority on Linux is per thread; tfjs's pool started long ago). */
function niceEveryThread(pid: number, niceness: number): void {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      os.setPriority(Number(tid), niceness);
    } catch {
      // a thread that just ended
    }
  }
}

export const api: Benchmark = {
  name: 'api',
  title: 'API reads: REST and tRPC latency with 50 concurrent clients while training',
  inDefault: true,
  async run({ quick, log }: BenchOptions): Promise<BenchOutcome> {
    const seconds = quick ? 2 : 10;
    let server: ServerHandle | null = null;
    const agents: AgentHandle[] = [];
    try {
      server = await startServer();
      for (let i = 1; i <= 2; i++) agents.push(spawnAgent(server.agentUrl, `api-${i}`));
      // Analysis: HYPERGPU_BENCH_NICE_AGENTS=1 runs the agents at nice 19, as if on machines of their own (in a
      // deployment they never share the coordinator's cores); the default keeps them at the server's priority.
      if (process.env.HYPERGPU_BENCH_NICE_AGENTS === '1') for (const a of agents) os.setPriority(a.pid, 19);
      await waitForNodes(server, agents.map((a) => a.name));
      await startSession(server, { model: 'mlp', batchSize: 128 });
      await warmUp(server, 20, 3000);
      const before0 = await statusSample(server);
      await sleep(quick ? 1500 : 3000);
      const before1 = await statusSample(server);
      const roundsBefore = ((before1.round - before0.round) * 1000) / (before1.at - before0.at);
      log(`training at ${fmt(roundsBefore, 1)} rounds/s; ${CLIENTS} closed-loop clients for ${seconds} s...`);
      const during0 = await statusSample(server);
      const cpu0 = processCpuSeconds(server.pid);
      const load = await loadReads(server.baseUrl, seconds, 1);
      const cpu1 = processCpuSeconds(server.pid);
      const during1 = await statusSample(server);
      const roundsDuring = ((during1.round - during0.round) * 1000) / (during1.at - during0.at);
      const serverCores = (cpu1 - cpu0) / ((during1.at - during0.at) / 1000);
      const all = Object.values(load.latencies).flat();
      log(`${load.requests} requests, p95 ${fmtMs(percentile(all, 95))}; open loop: ${CLIENTS} clients x 10 requests/s for ${seconds} s...`);
      const openDelay = await withLoopDelays(server.baseUrl, () => loadReads(server!.baseUrl, seconds, 1, 100));
      const open = openDelay.result;
      const openAll = Object.values(open.latencies).flat();
      // Analysis: the same open loop with every thread of both agents at nice 19, as if they trained on machines of
      // their own (in a deployment they never share the coordinator's cores): what is left is the coordinator's.
      log('the same open loop with the agents at nice 19 (analysis)...');
      for (const a of agents) niceEveryThread(a.pid, 19);
      await sleep(1000);
      const nicedDelay = await withLoopDelays(server.baseUrl, () => loadReads(server!.baseUrl, seconds, 1, 100));
      const nicedAll = Object.values(nicedDelay.result.latencies).flat();
      log('training paused: the same closed loop against an idle coordinator...');
      const paused = await requestJson(`${server.baseUrl}/api/training/pause`, 'POST');
      if (paused.status !== 200) throw new Error(`pause: ${paused.status} ${JSON.stringify(paused.body)}`);
      await sleep(500);
      const idleCpu0 = processCpuSeconds(server.pid);
      const idleT0 = Date.now();
      const idle = await loadReads(server.baseUrl, seconds, 1);
      const idleCores = (processCpuSeconds(server.pid) - idleCpu0) / ((Date.now() - idleT0) / 1000);
      const idleAll = Object.values(idle.latencies).flat();
      const rows: Row[] = [];
      for (const endpoint of ENDPOINTS) {
        const s = summarize(load.latencies[endpoint]);
        const o = summarize(open.latencies[endpoint]);
        rows.push(
          latencyRow(
            `GET ${endpoint}`,
            s,
            { label: 'p95 < 10 ms', ms: 10 },
            `${s.n} requests, ${fmt(load.bytes[endpoint] / 1024, 1)} KiB per response; at 500 requests/s: p50 ${fmtMs(o.p50)}, p95 ${fmtMs(o.p95)}`,
          ),
        );
      }
      const overall = summarize(all);
      rows.push(
        latencyRow(
          'all reads, 50 clients closed loop',
          overall,
          { label: 'p95 < 10 ms', ms: 10 },
          `${fmt(load.requests / load.seconds, 0)} requests/s${load.errors ? `, ${load.errors} errors` : ''}, server ${fmt(serverCores, 2)} cores; training ${fmt(roundsBefore, 1)} rounds/s before, ${fmt(roundsDuring, 1)} during`,
        ),
      );
      const openOverall = summarize(openAll);
      rows.push(
        latencyRow(
          'all reads at 500 requests/s while 2 agents train (50 clients x 10/s, open loop)',
          openOverall,
          { label: 'p95 < 10 ms at 500 requests/s', ms: 10 },
          `${fmt(open.requests / open.seconds, 0)} requests/s${open.errors ? `, ${open.errors} errors` : ''}; ${delayNote(openDelay)}`,
        ),
      );
      const niced = summarize(nicedAll);
      rows.push(
        latencyRow(
          'all reads at 500 requests/s, agents at nice 19 (analysis: as if on machines of their own)',
          niced,
          null,
          `${fmt(nicedDelay.result.requests / nicedDelay.result.seconds, 0)} requests/s; ${delayNote(nicedDelay)}`,
        ),
      );
      log('training paused: server CPU per request, one endpoint at a time...');
      const costs: Record<string, { requestsPerSecond: number; cpuUsPerRequest: number; bytes: number }> = {};
      for (const endpoint of ['/health', ...ENDPOINTS]) costs[endpoint] = await serverCostPerRequest(server, endpoint, quick ? 1 : 2);
      const idleOverall = summarize(idleAll);
      rows.push(
        latencyRow(
          'all reads, 50 clients closed loop, training paused (analysis)',
          idleOverall,
          null,
          `${fmt(idle.requests / idle.seconds, 0)} requests/s${idle.errors ? `, ${idle.errors} errors` : ''}, server ${fmt(idleCores, 2)} cores = ${fmt((idleCores * 1e6) / (idle.requests / idle.seconds), 0)} µs of server CPU per request: the coordinator and the load generator with the cores to themselves`,
        ),
      );
      rows.push(
        row(
          'server CPU per request, by endpoint (analysis)',
          ENDPOINTS.map((e) => `${e.replace('/api/', '').replace('/trpc/', 'trpc ')} ${fmt(costs[e].cpuUsPerRequest, 0)} µs`).join(', '),
          costs['/trpc/training.status'].cpuUsPerRequest,
          'µs/request',
          '',
          undefined,
          `/health ${fmt(costs['/health'].cpuUsPerRequest, 0)} µs; training paused, 8 keep-alive clients per endpoint; /api/metrics sends ${fmt(costs['/api/metrics'].bytes / 1024, 0)} KiB (the whole history)`,
        ),
      );
      return {
        rows,
        notes: [
          `${CLIENTS} concurrent keep-alive clients in the benchmark process; closed loop (the target's condition): each client sends its next request as soon as the last is answered, endpoints round-robin, 1 s of load before recording, so the latency is ${CLIENTS} / (requests the box sustains per second). Open loop (the condition of the 500 requests/s target): each client sends one request every 100 ms (500 requests/s in all), latency from the scheduled time, so a request that waits behind the event loop counts from when it was due. Paused (analysis): the closed loop again with the session paused, so only the coordinator and the load generator use the cores. The server, 2 training agents and the load generator share the 2 cores, so the latencies include waiting for a core. Agents at nice 19 (analysis): the open loop again with every thread of both agents lowered, as if they trained elsewhere. Beside each open loop: how late the server's event loop ran (prom-client's 10 ms sampler on /metrics, less its interval) and how late the load generator's own loop ran (a request it sends late counts against the server). The evaluator and auditor threads run at HYPERGPU_BACKGROUND_NICE (default 0).`,
          `/api/metrics returns the whole metric history of the session (${fmt(load.bytes['/api/metrics'] / 1024, 0)} KiB at round ${during1.round}); its cost grows with the session.`,
        ],
        details: {
          clients: CLIENTS,
          closedLoop: {
            seconds: load.seconds,
            requests: load.requests,
            errors: load.errors,
            responseBytes: load.bytes,
            serverCores,
            perEndpoint: Object.fromEntries(ENDPOINTS.map((e) => [e, { ...summarize(load.latencies[e]), p90: percentile(load.latencies[e], 90) }])),
            overall,
          },
          openLoop: { requestsPerSecond: open.requests / open.seconds, errors: open.errors, perEndpoint: Object.fromEntries(ENDPOINTS.map((e) => [e, summarize(open.latencies[e])])), overall: openOverall, serverLoopDelayMs: openDelay.server, clientLoopDelayMs: openDelay.client },
          openLoopAgentsNiced: { requestsPerSecond: nicedDelay.result.requests / nicedDelay.result.seconds, overall: niced, serverLoopDelayMs: nicedDelay.server, clientLoopDelayMs: nicedDelay.client },
          pausedClosedLoop: { requestsPerSecond: idle.requests / idle.seconds, errors: idle.errors, serverCores: idleCores, overall: idleOverall },
          serverCostPerRequest: costs,
          training: { roundsPerSecondBefore: roundsBefore, roundsPerSecondDuring: roundsDuring, roundAtEnd: during1.round },
        },
      };
    } finally {
      await Promise.all(agents.map((a) => a.stop()));
      await server?.stop();
    }
  },
};
