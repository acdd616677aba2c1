// Scale: 10, 20, 50, 100 and 200 simulated agents (one process, bench/lib/sim-agent.ts: real WebSockets, the
// real protocol, real-size MLP updates of 109,386 float32, answered the moment the assignment arrives) against
// a fresh real server per N. Per N: wall time per round, the server's own round duration (open to close),
// coordinator CPU (all its threads, from /proc/<pid>/stat) and RSS (/proc/<pid>/status, sampled every 250 ms).
// The MLP is the largest model the server ships (the update size cannot be changed from outside), so a second
// part measures what 1M-parameter updates would cost the coordinator per round, in this process, with the
// product code: N x (decodeFrameInto with the pool's inspection kernel, as receiveFrame does) + pool.weightedMean over N slots + the
// model frame's encodeFrame + the Adam step.
//   npm run bench -- scale                 (about a minute)
import { createAggregatorPool } from '../src/server/adapters/workers/aggregator-pool';
import { applyOptimizerStep, createOptimizerState } from '../src/server/core/optimizer';
import { decodeFrameInto, encodeFrame, FrameKind } from '../src/protocol/frame';
import { DEFAULT_SESSION_CONFIG } from '../src/server/core/session-config';
import { below, fmt, fmtMs, median, percentile, row, sleep, timeRuns, type BenchOptions, type BenchOutcome, type Benchmark, type Row } from './lib/common';
import { getJson, processCpuSeconds, processMemory, startServer, startSession, type ServerHandle } from './lib/procs';
import { SimAgent } from './lib/sim-agent';
import { statusSample } from './lib/training';

interface ScalePoint {
  nodes: number;
  rounds: number;
  seconds: number;
  /** Wall time per round (measurement time / rounds). */
  cycleMs: number;
  /** The server's open-to-close duration per round (metric.roundDurationMs): median and p95. */
  roundP50Ms: number;
  roundP95Ms: number;
  /** Updates applied per round (median), to show every node delivered. */
  updatesPerRound: number;
  cpuMsPerRound: number;
  serverCores: number;
  rssPeakMb: number;
  rssEndMb: number;
  rssBeforeSessionMb: number;
  failedNodes: number;
  rejected: number;
  lastRejection: string | null;
}

async function measureScale(nodes: number, quick: boolean, log: (line: string) => void): Promise<ScalePoint> {
  let server: ServerHandle | null = null;
  const agents: SimAgent[] = [];
  try {
    server = await startServer();
    for (let i = 0; i < nodes; i += 25) {
      const batch = Array.from({ length: Math.min(25, nodes - i) }, (_, k) => new SimAgent(server!.agentUrl, `sim-${i + k + 1}`));
      agents.push(...batch);
      await Promise.all(batch.map((a) => a.connect()));
    }
    const rssBeforeSession = processMemory(server.pid).rss;
    // Evaluation off: it runs on the same cores whatever N is, and would blur how the round machinery scales.
    await startSession(server, { model: 'mlp', batchSize: 128, evalEvery: 100_000 });
    const warmRounds = quick ? 3 : 5;
    const started = Date.now();
    let s = await statusSample(server);
    while (s.round < warmRounds) {
      if (Date.now() - started > 60_000) {
        const nodeList = ((await getJson(`${server.baseUrl}/api/nodes`)).nodes as Array<{ status: string; statusReason: string | null }>).map((n) => `${n.status} (${n.statusReason})`);
        const counts = [...new Set(nodeList)].map((k) => `${nodeList.filter((x) => x === k).length} x ${k}`).join(', ');
        const stats = agents.map((a) => a.stats);
        throw new Error(
          `N = ${nodes}: no round ${warmRounds} within 60 s (round ${s.round}); nodes: ${counts}; simulated agents: ${stats.reduce((t, x) => t + x.rounds, 0)} updates sent, ` +
            `${stats.reduce((t, x) => t + x.accepted, 0)} accepted, ${stats.reduce((t, x) => t + x.rejected, 0)} rejected, ${stats.reduce((t, x) => t + x.closes, 0)} connections closed; server output:\n${server.output().slice(-3000)}`,
        );
      }
      await sleep(100);
      s = await statusSample(server);
    }
    const targetRounds = quick ? 6 : 20;
    const minMs = quick ? 2000 : 5000;
    const maxMs = quick ? 8000 : 25_000;
    const first = await statusSample(server);
    const cpu0 = processCpuSeconds(server.pid);
    let rssPeak = processMemory(server.pid).rss;
    let last = first;
    while (true) {
      await sleep(250);
      last = await statusSample(server);
      rssPeak = Math.max(rssPeak, processMemory(server.pid).rss);
      const elapsed = last.at - first.at;
      if ((last.round - first.round >= targetRounds && elapsed >= minMs) || elapsed >= maxMs) break;
    }
    const cpu1 = processCpuSeconds(server.pid);
    const rounds = last.round - first.round;
    const seconds = (last.at - first.at) / 1000;
    const history = ((await getJson(`${server.baseUrl}/api/metrics`)).history as Array<{ round: number; roundDurationMs: number; nodes: number }>).filter(
      (m) => m.round > first.round && m.round <= last.round,
    );
    const nodeList = (await getJson(`${server.baseUrl}/api/nodes`)).nodes as Array<{ status: string }>;
    const point: ScalePoint = {
      nodes,
      rounds,
      seconds,
      cycleMs: rounds > 0 ? (seconds * 1000) / rounds : Number.NaN,
      roundP50Ms: median(history.map((m) => m.roundDurationMs)),
      roundP95Ms: percentile(history.map((m) => m.roundDurationMs), 95),
      updatesPerRound: median(history.map((m) => m.nodes)),
      cpuMsPerRound: rounds > 0 ? ((cpu1 - cpu0) * 1000) / rounds : Number.NaN,
      serverCores: (cpu1 - cpu0) / seconds,
      rssPeakMb: rssPeak / 2 ** 20,
      rssEndMb: processMemory(server.pid).rss / 2 ** 20,
      rssBeforeSessionMb: rssBeforeSession / 2 ** 20,
      failedNodes: nodeList.filter((n) => n.status === 'failed').length,
      rejected: agents.reduce((sum, a) => sum + a.stats.rejected, 0),
      lastRejection: agents.find((a) => a.stats.lastRejection)?.stats.lastRejection ?? null,
    };
    log(
      `N = ${nodes}: ${rounds} rounds in ${fmt(seconds, 1)} s: ${fmtMs(point.cycleMs)}/round (server open-to-close p50 ${fmtMs(point.roundP50Ms)}), ` +
        `${fmt(point.updatesPerRound, 0)} updates/round, CPU ${fmtMs(point.cpuMsPerRound)}/round (${fmt(point.serverCores, 2)} cores), RSS peak ${fmt(point.rssPeakMb, 0)} MB` +
        (point.failedNodes ? `, ${point.failedNodes} node(s) failed` : ''),
    );
    return point;
  } finally {
    for (const a of agents) a.close();
    await server?.stop();
  }
}

interface Projection {
  nodes: number;
  receivePerUpdateMs: number;
  weightedMeanMs: number;
  encodeModelMs: number;
  adamMs: number;
  perRoundMs: number;
  slotMemoryMb: number;
}

/** What 1M-parameter updates would cost the coordinator per round, measured with the product code here. */
async function projectMillion(counts: number[], quick: boolean): Promise<Projection[]> {
  const p = 1_000_000;
  const payload = new Float32Array(p);
  for (let i = 0; i < p; i++) payload[i] = ((((i * 2654435761) >>> 0) % 2001) / 1000 - 1) * 1e-4;
  const frame = encodeFrame({ kind: FrameKind.Gradient, sessionId: 1, round: 1, nodeId: 1, attempt: 1, modelVersion: 0, sampleCount: 128, trainLoss: 2.3 }, payload);
  const params = payload.slice();
  const optimizer = createOptimizerState(DEFAULT_SESSION_CONFIG.optimizer, p);
  const encodeModelMs = median(await timeRuns(quick ? 3 : 9, 2, () => encodeFrame({ kind: FrameKind.Model, sessionId: 1, round: 1, nodeId: 0, attempt: 0, modelVersion: 1, sampleCount: 0, trainLoss: Number.NaN }, params)));
  const adamMs = median(await timeRuns(quick ? 3 : 9, 2, () => applyOptimizerStep(DEFAULT_SESSION_CONFIG.optimizer, optimizer, params, payload)));
  const pool = await createAggregatorPool({ backend: 'wasm' });
  const out: Projection[] = [];
  try {
    for (const n of counts) {
      const slots = Array.from({ length: n }, () => pool.acquire(p));
      // Received the way the coordinator receives them: one decode into each update's own slot, inspected there.
      // The first pass only faults the slots' pages in (a steady-state round reuses released slots).
      for (const slot of slots) decodeFrameInto(frame, slot.view, () => pool.inspect(slot));
      const receive: number[] = [];
      let sink = 0;
      for (const slot of slots) {
        const t0 = performance.now();
        sink += Math.sqrt(decodeFrameInto(frame, slot.view, () => pool.inspect(slot)).stats.sumSquares);
        receive.push(performance.now() - t0);
      }
      const weights = slots.map(() => 128);
      const meanMs = median(await timeRuns(quick ? 3 : 7, 1, () => pool.weightedMean(slots, weights)));
      for (const slot of slots) pool.release(slot);
      const receivePerUpdateMs = median(receive);
      if (Number.isNaN(sink)) throw new Error('norm is NaN');
      out.push({ nodes: n, receivePerUpdateMs, weightedMeanMs: meanMs, encodeModelMs, adamMs, perRoundMs: n * receivePerUpdateMs + meanMs + encodeModelMs + adamMs, slotMemoryMb: (n * p * 4) / 2 ** 20 });
    }
  } finally {
    await pool.close();
  }
  return out;
}

export const scale: Benchmark = {
  name: 'scale',
  title: 'Scale: 10-200 simulated agents against one coordinator (round time, CPU, RSS)',
  inDefault: true,
  async run({ quick, log }: BenchOptions): Promise<BenchOutcome> {
    const counts = quick ? [10, 20] : [10, 20, 50, 100, 200];
    const points: ScalePoint[] = [];
    for (const n of counts) points.push(await measureScale(n, quick, log));
    log('1M-parameter projection (aggregator-side compute per round, in this process)...');
    const projection = await projectMillion(counts, quick);

    const rows: Row[] = points.map((p) =>
      row(
        `N=${p.nodes} sim agents (MLP, 109,386 params)`,
        `${fmtMs(p.cycleMs)}/round, CPU ${fmtMs(p.cpuMsPerRound)}/round, RSS ${fmt(p.rssPeakMb, 0)} MB`,
        p.cycleMs,
        'ms/round',
        '',
        undefined,
        `server open-to-close p50 ${fmtMs(p.roundP50Ms)} p95 ${fmtMs(p.roundP95Ms)}; ${fmt(p.updatesPerRound, 0)} updates/round; ${fmt(p.serverCores, 2)} cores; RSS ${fmt(p.rssBeforeSessionMb, 0)} MB before the session` +
          (p.failedNodes ? `; ${p.failedNodes} node(s) failed` : '') +
          (p.rejected ? `; ${p.rejected} update(s) rejected (${p.lastRejection})` : ''),
      ),
    );
    const base = points.find((p) => p.nodes === 10);
    const hundred = points.find((p) => p.nodes === 100);
    if (base && hundred) {
      const ratio = hundred.cycleMs / base.cycleMs;
      rows.push(
        row('round time, 100 vs 10 nodes', `${fmt(ratio, 1)}x`, ratio, 'x', '<= 10x', ratio <= 10 ? { verdict: 'met' } : below(ratio, 10, 'x'), `server open-to-close: ${fmt(hundred.roundP50Ms / base.roundP50Ms, 1)}x; CPU per round: ${fmt(hundred.cpuMsPerRound / base.cpuMsPerRound, 1)}x`),
      );
      rows.push(row('coordinator RSS at 100 nodes (peak)', `${fmt(hundred.rssPeakMb, 0)} MB`, hundred.rssPeakMb, 'MB', '< 500 MB', below(hundred.rssPeakMb, 500, ' MB'), `${fmt(hundred.rssBeforeSessionMb, 0)} MB with 100 nodes connected before the session started`));
    }
    for (const pr of projection.filter((x) => x.nodes === 10 || x.nodes === 100 || x.nodes === counts[counts.length - 1])) {
      rows.push(
        row(
          `1M-param updates, N=${pr.nodes}: coordinator compute/round (projection)`,
          fmtMs(pr.perRoundMs),
          pr.perRoundMs,
          'ms/round',
          '',
          undefined,
          `${pr.nodes} x ${fmtMs(pr.receivePerUpdateMs)} receive (decode + inspection) + weightedMean ${fmtMs(pr.weightedMeanMs)} + model encode ${fmtMs(pr.encodeModelMs)} + Adam ${fmtMs(pr.adamMs)}; ${fmt(pr.slotMemoryMb, 0)} MB of slots`,
        ),
      );
    }
    const p10 = projection.find((x) => x.nodes === 10);
    const p100 = projection.find((x) => x.nodes === 100);
    if (p10 && p100) rows.push(row('1M-param projection, 100 vs 10 nodes', `${fmt(p100.perRoundMs / p10.perRoundMs, 1)}x`, p100.perRoundMs / p10.perRoundMs, 'x', '', undefined, 'compute only: network, the ws receive copy and SQLite are not in it'));
    return {
      rows,
      notes: [
        'Simulated agents live in one process (this one) on the same 2 cores as the server: they answer instantly, so a round\'s time is the coordinator\'s work plus the loopback transfers of N model frames out and N updates in (each 437 KB), plus the simulator\'s own share of the CPU.',
        'Sessions run with evaluation off (evalEvery 100000; it costs the same whatever N is) and the other defaults (Adam, batch 128/node, checkpoint every 50 rounds); the server uses its default heartbeat (200 ms, timeout 800 ms). RSS is the server process (all its threads: aggregator and evaluator workers included).',
        'The 1M-parameter rows are a projection, not a measurement of the server: it ships no model that large. They add up the per-round compute on the coordinator, measured with the product code in this process; network transfer (N x 4 MB each way) and the database are not included.',
      ],
      details: { points, projection },
    };
  },
};
