// Memory: the coordinator's resident set (VmRSS of the server process, all its threads, from /proc/<pid>/status),
// run both ways in the same run: as `npm start` runs it now (the esbuild bundle, .build/server) and as it ran
// before (the TypeScript sources under tsx's loader, which every worker thread loads again). Three situations:
//   idle         no session, no agents; the API only, then with the dashboard (Next.js) after one page view
//   2 agents     one session (MLP on MNIST, the defaults: evaluation every 10 rounds, audits on) with two real
//                agent processes: peak while training, then after the session ends (evaluator and auditor gone)
//   100 nodes    100 simulated agents (bench/lib/sim-agent.ts), as bench/scale.ts runs them (evaluation off)
//   npm run bench -- memory            (about 5 minutes)
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { below, fmt, ROOT, row, sleep, waitFor, type BenchOptions, type BenchOutcome, type Benchmark, type Row } from './lib/common';
import { getJson, processMemory, spawnAgent, startServer, startSession, stopSession, type AgentHandle, type ServerHandle } from './lib/procs';
import { SimAgent } from './lib/sim-agent';
import { statusSample } from './lib/training';

type Mode = 'bundle' | 'tsx';
const MB = 2 ** 20;

function threads(pid: number): number {
  return Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);
}

/** RSS once it has settled: the median of samples over `ms` (a server just up still faults pages in). */
async function settledRss(pid: number, ms = 2000): Promise<number> {
  const samples: number[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    samples.push(processMemory(pid).rss);
    await sleep(200);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1] / MB;
}

interface Idle {
  mode: Mode;
  apiMb: number;
  apiThreads: number;
  dashboardMb: number | null;
}

async function measureIdle(mode: Mode, withDashboard: boolean, log: (line: string) => void): Promise<Idle> {
  let server: ServerHandle | null = null;
  const result: Idle = { mode, apiMb: Number.NaN, apiThreads: 0, dashboardMb: null };
  try {
    server = await startServer({ mode, args: ['--no-chain'] });
    await sleep(3000);
    result.apiMb = await settledRss(server.pid);
    result.apiThreads = threads(server.pid);
  } finally {
    await server?.stop();
  }
  if (withDashboard) {
    try {
      server = await startServer({ mode, args: ['--no-chain'], dashboard: true });
      // Next compiles nothing in production, but loads a route's modules on its first request.
      const res = await fetch(`${server.baseUrl}/`);
      await res.arrayBuffer();
      await sleep(3000);
      result.dashboardMb = await settledRss(server.pid);
    } finally {
      await server?.stop();
    }
  }
  log(`${mode}: idle ${fmt(result.apiMb, 0)} MB (API only, ${result.apiThreads} threads)${result.dashboardMb === null ? '' : `, ${fmt(result.dashboardMb, 0)} MB with the dashboard`}`);
  return result;
}

interface Session {
  mode: Mode;
  beforeMb: number;
  peakMb: number;
  peakThreads: number;
  endedMb: number;
  endedThreads: number;
  rounds: number;
  evaluations: number;
}

async function measureSession(mode: Mode, quick: boolean, log: (line: string) => void): Promise<Session> {
  let server: ServerHandle | null = null;
  const agents: AgentHandle[] = [];
  try {
    server = await startServer({ mode, args: ['--no-chain'] });
    for (const name of ['mem-a', 'mem-b']) agents.push(spawnAgent(server.agentUrl, name));
    await waitFor(async () => (await getJson(`${server!.baseUrl}/api/nodes`)).nodes as unknown[], (n) => n.length >= 2, 120_000, 'two agents', 250);
    const beforeMb = await settledRss(server.pid, 1000);
    await startSession(server, { model: 'mlp' });
    const started = Date.now();
    const minMs = quick ? 10_000 : 30_000;
    let peak = 0;
    let peakThreads = 0;
    let s = await statusSample(server);
    while (Date.now() - started < minMs || s.round < (quick ? 12 : 40)) {
      if (Date.now() - started > 180_000) break;
      await sleep(250);
      const rss = processMemory(server.pid).rss / MB;
      if (rss > peak) peak = rss;
      peakThreads = Math.max(peakThreads, threads(server.pid));
      s = await statusSample(server);
    }
    const history = (await getJson(`${server.baseUrl}/api/metrics`)).history as Array<{ testAccuracy: number | null }>;
    await stopSession(server);
    // The evaluator closes with the session; the auditor once its queued audits have run.
    await sleep(4000);
    const endedMb = await settledRss(server.pid);
    const point: Session = { mode, beforeMb, peakMb: peak, peakThreads, endedMb, endedThreads: threads(server.pid), rounds: s.round, evaluations: history.filter((m) => m.testAccuracy !== null).length };
    log(`${mode}: 2 agents: ${fmt(beforeMb, 0)} MB connected, peak ${fmt(peak, 0)} MB (${peakThreads} threads) over ${s.round} rounds, ${fmt(endedMb, 0)} MB (${point.endedThreads} threads) after the session ended`);
    return point;
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await server?.stop();
  }
}

interface Hundred {
  mode: Mode;
  connectedMb: number;
  peakMb: number;
  peakThreads: number;
  rounds: number;
}

export async function measureHundred(mode: Mode, quick: boolean, log: (line: string) => void, env: Record<string, string> = {}, onServer?: (server: ServerHandle) => void): Promise<Hundred> {
  const nodes = quick ? 20 : 100;
  let server: ServerHandle | null = null;
  const agents: SimAgent[] = [];
  try {
    server = await startServer({ mode, args: ['--no-chain'], env });
    onServer?.(server);
    for (let i = 0; i < nodes; i += 25) {
      const batch = Array.from({ length: Math.min(25, nodes - i) }, (_, k) => new SimAgent(server!.agentUrl, `sim-${i + k + 1}`));
      agents.push(...batch);
      await Promise.all(batch.map((a) => a.connect()));
    }
    const connectedMb = await settledRss(server.pid, 1000);
    // As bench/scale.ts: evaluation off, the other defaults.
    await startSession(server, { model: 'mlp', batchSize: 128, evalEvery: 100_000 });
    const started = Date.now();
    let peak = 0;
    let peakThreads = 0;
    let s = await statusSample(server);
    const rounds = quick ? 6 : 25;
    while (s.round < rounds && Date.now() - started < 120_000) {
      await sleep(250);
      peak = Math.max(peak, processMemory(server.pid).rss / MB);
      peakThreads = Math.max(peakThreads, threads(server.pid));
      s = await statusSample(server);
    }
    if (s.round < rounds) throw new Error(`${mode}: ${nodes} nodes: only ${s.round} rounds in 120 s`);
    log(`${mode}: ${nodes} simulated nodes: ${fmt(connectedMb, 0)} MB connected, peak ${fmt(peak, 0)} MB (${peakThreads} threads) over ${s.round} rounds`);
    return { mode, connectedMb, peakMb: peak, peakThreads, rounds: s.round };
  } finally {
    for (const a of agents) a.close();
    await server?.stop();
  }
}

export const memory: Benchmark = {
  name: 'memory',
  title: 'Memory: coordinator RSS idle, with 2 agents, with 100 simulated nodes (bundle vs tsx)',
  inDefault: true,
  async run({ quick, log }: BenchOptions): Promise<BenchOutcome> {
    // The dashboard needs a production build; `npm start` makes one, this benchmark does not wait for one.
    const dashboard = existsSync(path.join(ROOT, '.next', 'BUILD_ID'));
    if (!dashboard) log('no dashboard build (.next/BUILD_ID): the idle-with-dashboard rows are skipped; `npm start` builds it');
    const modes: Mode[] = ['tsx', 'bundle'];
    const idle: Idle[] = [];
    const sessions: Session[] = [];
    const hundred: Hundred[] = [];
    for (const mode of modes) idle.push(await measureIdle(mode, dashboard, log));
    for (const mode of modes) sessions.push(await measureSession(mode, quick, log));
    for (const mode of modes) hundred.push(await measureHundred(mode, quick, log));

    const by = <T extends { mode: Mode }>(list: T[], mode: Mode) => list.find((x) => x.mode === mode)!;
    const [ib, it] = [by(idle, 'bundle'), by(idle, 'tsx')];
    const [sb, st] = [by(sessions, 'bundle'), by(sessions, 'tsx')];
    const [hb, ht] = [by(hundred, 'bundle'), by(hundred, 'tsx')];
    const n = quick ? 20 : 100;
    const rows: Row[] = [
      row('coordinator RSS idle (API only, no session)', `${fmt(ib.apiMb, 0)} MB`, ib.apiMb, 'MB', '< 150 MB', below(ib.apiMb, 150, ' MB'), `under tsx (before): ${fmt(it.apiMb, 0)} MB; ${ib.apiThreads} threads (tsx: ${it.apiThreads})`),
    ];
    if (ib.dashboardMb !== null && it.dashboardMb !== null) {
      rows.push(row('coordinator RSS idle with the dashboard (after one page view)', `${fmt(ib.dashboardMb, 0)} MB`, ib.dashboardMb, 'MB', '', undefined, `under tsx (before): ${fmt(it.dashboardMb, 0)} MB; Next.js's request handler is the difference from the API-only row`));
    }
    rows.push(
      row('coordinator RSS, one session with 2 real agents (peak)', `${fmt(sb.peakMb, 0)} MB`, sb.peakMb, 'MB', '', undefined, `under tsx (before): ${fmt(st.peakMb, 0)} MB; ${fmt(sb.beforeMb, 0)} MB with the agents connected before the session; ${sb.rounds} rounds, ${sb.evaluations} evaluations; ${sb.peakThreads} threads at most`),
      row('coordinator RSS after that session ended', `${fmt(sb.endedMb, 0)} MB`, sb.endedMb, 'MB', '', undefined, `under tsx: ${fmt(st.endedMb, 0)} MB; ${sb.endedThreads} threads (${sb.peakThreads} at most during the session): evaluator and auditor threads let go`),
      row(`coordinator RSS at ${n} simulated nodes (peak)`, `${fmt(hb.peakMb, 0)} MB`, hb.peakMb, 'MB', quick ? '' : '< 400 MB', quick ? undefined : below(hb.peakMb, 400, ' MB'), `under tsx (before): ${fmt(ht.peakMb, 0)} MB; ${fmt(hb.connectedMb, 0)} MB with the nodes connected before the session; ${hb.rounds} rounds, evaluation off as in the scale benchmark; ${hb.peakThreads} threads at most`),
    );
    return {
      rows,
      notes: [
        'RSS is VmRSS of the server process from /proc (all its threads: aggregator workers, and the evaluator and auditor when they run). "Before" is the same server run as `node --import tsx src/server/main.ts`, in the same run, on the same machine; "after" is `npm start`\'s `node .build/server/main.mjs`.',
        'Idle rows: the median of samples over 2 s, 3 s after /health first answered. Session rows sample every 250 ms while training; "after the session ended" is 4 s after POST /api/training/stop.',
        'The 2 real agents are separate processes (not counted) on the same 2 cores; the simulated nodes live in the benchmark process.',
        'The tsx rows share everything else with the bundle rows (the Prisma client with the size-optimised query compiler, the auditor reading training images from disk), so the difference is the loader alone. Before these changes (`node --import tsx src/server/main.ts`, the fast query compiler, viem loaded whole, the auditor holding the training images): 379 MB idle, API only, measured by hand on this box; bench/scale.ts had 584 MB at 100 nodes before the auditor thread was added.',
        'At 100 simulated nodes the audits fall behind (simulated nodes answer at once, so rounds outpace the single auditor thread): the updates waiting for it (437 KB each for the MLP, one reservoir candidate per node per epoch plus 5% of all updates) are held in memory up to 4 MiB and in scratch files under the data folder past that (up to 1 GiB; AUDIT_MEMORY_BYTES and AUDIT_SPILL_BYTES in src/server/core/audit.ts), so all of them are audited. Before (up to 256 copies in memory, ~112 MB, the rest recorded as not audited) the same row peaked at 476-505 MB; the same run with captures switched off peaked at about 290 MB (a one-off experiment, not a mode of the product). `npx tsx bench/memory-hundred.ts` runs this row alone.',
      ],
      details: { idle, sessions, hundred },
    };
  },
};
