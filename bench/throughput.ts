// Throughput: applied samples per second of the whole system (the real server, N real agent processes, MLP on
// MNIST, batch 128 per node, the session defaults: Adam, evaluation every 10 rounds, checkpoint every 50)
// for N = 1, 2, 4 (and 10: the original design's "> 1,000 samples/s with 10 nodes"), against one process
// training the same model with the same backend and batch on the same cores (bench/lib/single-process.ts).
// The baseline runs first, alone; then one server, with agents added between sessions.
//   npm run bench -- throughput            (about 2 minutes)
import os from 'node:os';
import path from 'node:path';
import { atLeast, fmt, ROOT, row, type BenchOptions, type BenchOutcome, type Benchmark, type Row } from './lib/common';
import { spawnAgent, spawnTracked, startServer, startSession, stopSession, waitForNodes, type AgentHandle, type ServerHandle } from './lib/procs';
import { measureRate, roundTiming, warmUp, type RateMeasurement, type RoundTiming } from './lib/training';

interface Baseline {
  backend: string;
  batch: number;
  microBatch: number;
  windows: number[];
  samplesPerSecond: number;
}

async function singleProcess(seconds: number, microBatch: number, batch = 128): Promise<Baseline> {
  const child = spawnTracked(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'bench/lib/single-process.ts'), '--seconds', String(seconds), '--micro', String(microBatch), '--batch', String(batch)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`single-process baseline failed (${code}): ${err.slice(-2000)}`);
  const line = out.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Baseline;
}

export const throughput: Benchmark = {
  name: 'throughput',
  title: 'Throughput: samples/s of the whole system with N real agents vs one process',
  inDefault: true,
  async run({ quick, log }: BenchOptions): Promise<BenchOutcome> {
    const measureS = quick ? 4 : 12;
    const windowS = quick ? 2 : 3;
    log(`single-process baseline (${measureS} s after a 2 s warm-up)...`);
    const baseline = await singleProcess(measureS, 128);
    log(`  ${fmt(baseline.samplesPerSecond, 0)} samples/s on ${baseline.backend}`);
    const cores = os.availableParallelism();
    const counts = quick ? [1, 2] : [1, 2, 4, 10];
    // Per-core efficiency compares at the same samples per optimizer step: N agents x 128 samples make one step,
    // so the single-core rate for N is one process at batch N x 128 (micro-batches of 128), measured here too.
    const singleCore = new Map<number, Baseline>([[1, baseline]]);
    for (const n of counts) {
      if (singleCore.has(n)) continue;
      log(`single core at ${n * 128} samples per step...`);
      singleCore.set(n, await singleProcess(measureS, 128, n * 128));
      log(`  ${fmt(singleCore.get(n)!.samplesPerSecond, 0)} samples/s`);
    }
    // Every core, no coordinator: tfjs's wasm backend is single-threaded in Node, so one process cannot train on
    // more than one core; the reference is one independent trainer per core, run at once, their rates summed.
    log(`every core: ${cores} single-core trainers at once...`);
    const allCores = await Promise.all(Array.from({ length: cores }, () => singleProcess(measureS, 128)));
    const allCoresRate = allCores.reduce((a, b) => a + b.samplesPerSecond, 0);
    log(`  ${fmt(allCoresRate, 0)} samples/s in all`);

    const agents: AgentHandle[] = [];
    let server: ServerHandle | null = null;
    const system: Array<{ nodes: number; evaluation: boolean; rate: RateMeasurement; timing: RoundTiming }> = [];
    try {
      server = await startServer();
      const runSession = async (nodes: number, config: Record<string, unknown>) => {
        await startSession(server!, { model: 'mlp', batchSize: 128, ...config });
        await warmUp(server!, 10, 3000);
        const rate = await measureRate(server!, measureS, windowS);
        const timing = await roundTiming(server!, rate.samples[0].round, rate.samples[rate.samples.length - 1].round);
        await stopSession(server!);
        return { rate, timing };
      };
      for (const n of counts) {
        while (agents.length < n) agents.push(spawnAgent(server.agentUrl, `tp-${agents.length + 1}`));
        await waitForNodes(server, agents.map((a) => a.name), 180_000);
        log(`N = ${n}: measuring ${measureS} s...`);
        const { rate, timing } = await runSession(n, {});
        system.push({ nodes: n, evaluation: true, rate, timing });
        log(`  ${fmt(rate.samplesPerSecond, 0)} samples/s (${fmt(rate.roundsPerSecond, 1)} rounds/s, server ${fmt(rate.serverCores, 2)} cores)`);
        if (n === 2 && !quick) {
          log('N = 2 without test-set evaluation (evalEvery 100000): measuring...');
          const off = await runSession(n, { evalEvery: 100_000 });
          system.push({ nodes: n, evaluation: false, ...off });
          log(`  ${fmt(off.rate.samplesPerSecond, 0)} samples/s`);
        }
      }
    } finally {
      await Promise.all(agents.map((a) => a.stop()));
      await server?.stop();
    }

    const rows: Row[] = [
      row('single process (Trainer + Adam, batch 128)', `${fmt(baseline.samplesPerSecond, 0)} samples/s`, baseline.samplesPerSecond, 'samples/s', '', undefined, baseline.backend),
      row(
        `every core: ${cores} independent single-core trainers at once`,
        `${fmt(allCoresRate, 0)} samples/s = ${fmt(allCoresRate / baseline.samplesPerSecond, 2)}x one core`,
        allCoresRate,
        'samples/s',
        '',
        undefined,
        'the most this machine trains with no coordination at all (tfjs wasm is single-threaded in Node: one process uses one core)',
      ),
    ];
    for (const s of system) {
      const ratio = (s.rate.samplesPerSecond / baseline.samplesPerSecond) * 100;
      const label = `system, N=${s.nodes} agent${s.nodes > 1 ? 's' : ''}${s.evaluation ? '' : ', evaluation off'}`;
      const oversubscribed = s.nodes > cores ? `; ${s.nodes} agents + server on ${cores} cores` : '';
      const measured = `${fmt(s.rate.samplesPerSecond, 0)} samples/s = ${fmt(ratio, 0)}%`;
      const detail =
        `${fmt(s.rate.roundsPerSecond, 1)} rounds/s: median round ${fmt(s.timing.cycleMs, 0)} ms = ${fmt(s.timing.openToCloseMs, 0)} ms open-to-close (model out, training, update in) + ` +
        `${fmt(s.timing.betweenMs, 0)} ms closing it and opening the next; server ${fmt(s.rate.serverCores, 2)} cores${oversubscribed}`;
      if (!s.evaluation) rows.push(row(label, measured, ratio, '% of single', '', undefined, `${detail} (analysis: cost of the default evaluation every 10 rounds)`));
      else rows.push(row(label, measured, ratio, '% of single', '>= 85% of single process', atLeast(ratio, 85, ' points'), detail));
      const single = singleCore.get(s.nodes)!;
      const used = Math.min(s.nodes, cores);
      const efficiency = (s.rate.samplesPerSecond / (used * single.samplesPerSecond)) * 100;
      const allShare = (s.rate.samplesPerSecond / allCoresRate) * 100;
      rows.push(
        row(
          `${label}: scaling efficiency per core`,
          `${fmt(efficiency, 0)}%`,
          efficiency,
          '% per core',
          s.evaluation ? '>= 85% per core' : '',
          s.evaluation ? atLeast(efficiency, 85, ' points') : undefined,
          `${fmt(s.rate.samplesPerSecond, 0)} samples/s / (min(${s.nodes}, ${cores} cores) x ${fmt(single.samplesPerSecond, 0)} samples/s single-core at ${single.batch} samples per step); ${fmt(allShare, 0)}% of every core trained independently`,
        ),
      );
      if (s.nodes === 10 && s.evaluation) {
        rows.push(row('system, N=10 (original design target)', `${fmt(s.rate.samplesPerSecond, 0)} samples/s`, s.rate.samplesPerSecond, 'samples/s', '> 1,000 samples/s with 10 nodes', atLeast(s.rate.samplesPerSecond, 1000, ' samples/s')));
      }
    }
    return {
      rows,
      notes: [
        `Percentages are of the single-process rate measured in the same run. Everything shares ${cores} cores: N agents each compute on one core (tfjs ${baseline.backend.split(' ')[0]}), the server aggregates, applies Adam, writes SQLite and evaluates on the 10,000 test images every 10 rounds (default) in a worker thread. With N >= 2 the agents alone can use every core, so the server's work comes out of the same budget; N = 4 and 10 oversubscribe the cores.`,
        `System rate = applied samples (GET /api/status session.totalSamples) per second, median of ${windowS}-second windows over ${measureS} s after 10 rounds of warm-up; baseline = median of 2-second windows over ${measureS} s after 2 s.`,
      ],
      details: { baseline, singleCore: Object.fromEntries(singleCore), allCores: { rate: allCoresRate, runs: allCores }, system },
    };
  },
};
