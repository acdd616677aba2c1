// The benchmark suite: `npm run bench` runs every benchmark of the default set, prints one table with each
// target beside the measured value, writes bench/results/<name>.json per benchmark and bench/results/SUMMARY.md.
//
//   npm run bench                          the default set (about 5-10 minutes on 2 cores)
//   npm run bench -- transport api         some of them
//   npm run bench -- soak [--minutes N]    the soak (30 minutes; not in the default set)
//   npm run bench -- robust                robust rules' cost and 1 Byzantine agent of 5 (minutes; not in the default set)
//   npm run bench -- fedavg                rounds to 97% with the FedAvg paper's 2NN, FedSGD vs FedAvg (about 13 minutes; not in the default set)
//   npm run bench -- overlap               a lone agent's utilisation and accuracy with and without overlap (about 4 minutes; not in the default set)
//   npm run bench -- norm-screen           honest updates the relative norm limit refuses, old rule vs engine, and the screen's effect on accuracy (about 15 minutes; not in the default set)
//   npm run bench -- --quick               a short smoke version of everything (checks the suite works)
//
// --quick results go to bench/results/quick/ and never into SUMMARY.md. Never part of `npm test`.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { aggregation } from './aggregation';
import { comm } from './comm';
import { api } from './api';
import { detection } from './detection';
import { fedavg } from './fedavg';
import { ingest } from './ingest';
import { trpcRead } from './trpc-read';
import { live } from './live';
import { memory } from './memory';
import { overlap } from './overlap';
import { robust } from './robust';
import { scale } from './scale';
import { soak } from './soak';
import { normScreenBench } from './norm-screen';
import { throughput } from './throughput';
import { transport } from './transport';
import { loadAverage, machineInfo, RESULTS_DIR, type BenchReport, type Benchmark } from './lib/common';
import { installCleanup } from './lib/procs';
import { BENCHMARK_ORDER, readReports, renderPerformance } from './lib/summary';

const BENCHMARKS: Benchmark[] = [ingest, aggregation, comm, transport, throughput, scale, memory, api, live, detection, trpcRead, soak, robust, fedavg, overlap, normScreenBench];

const USAGE = `Usage: npm run bench -- [name ...] [--quick] [--minutes N]

  names      ${BENCHMARKS.map((b) => b.name).join(', ')} (default: all but soak, robust, fedavg, overlap and norm-screen)
  --quick    short smoke version (results in bench/results/quick/, not in SUMMARY.md)
  --minutes  soak length in minutes (default 30)
`;

function parseCli(): { names: string[]; quick: boolean; minutes?: number } {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: { quick: { type: 'boolean' }, minutes: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const unknown = positionals.filter((n) => !BENCHMARKS.some((b) => b.name === n));
  if (unknown.length) {
    process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}\n\n${USAGE}`);
    process.exit(2);
  }
  let minutes: number | undefined;
  if (values.minutes !== undefined) {
    minutes = Number(values.minutes);
    if (!Number.isFinite(minutes) || minutes <= 0) {
      process.stderr.write(`--minutes ${values.minutes} is not a positive number\n`);
      process.exit(2);
    }
  }
  return { names: positionals, quick: values.quick ?? false, minutes };
}

function table(reports: BenchReport[]): string {
  const header = ['benchmark', 'metric', 'measured', 'target', 'verdict'];
  const lines: string[][] = [];
  for (const report of reports) {
    if (report.error) lines.push([report.benchmark, 'ERROR', report.error.split('\n')[0].slice(0, 120), '-', 'error']);
    for (const r of report.rows) lines.push([report.benchmark, r.metric, r.measured, r.target, r.verdict === 'MISSED' && r.miss ? `MISSED: ${r.miss}` : r.verdict === 'info' ? '' : r.verdict]);
  }
  const widths = header.map((h, i) => Math.min(i === 4 ? 80 : 70, Math.max(h.length, ...lines.map((l) => l[i].length))));
  const fmtLine = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [fmtLine(header), fmtLine(widths.map((w) => '-'.repeat(w))), ...lines.map(fmtLine)].join('\n');
}

async function main(): Promise<void> {
  installCleanup();
  const { names, quick, minutes } = parseCli();
  const selected = names.length ? BENCHMARKS.filter((b) => names.includes(b.name)) : BENCHMARKS.filter((b) => b.inDefault);
  const outDir = quick ? path.join(RESULTS_DIR, 'quick') : RESULTS_DIR;
  mkdirSync(outDir, { recursive: true });
  const started = Date.now();
  const reports: BenchReport[] = [];
  const machine = machineInfo();
  console.log(`HyperGPU benchmarks${quick ? ' (--quick)' : ''}: ${selected.map((b) => b.name).join(', ')}`);
  console.log(`${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}; load average ${loadAverage().join(' / ')}\n`);
  for (const bench of selected) {
    const benchStarted = Date.now();
    const loadAtStart = loadAverage();
    console.log(`== ${bench.name}: ${bench.title}`);
    const log = (line: string) => console.log(`   ${line}`);
    const report: BenchReport = {
      benchmark: bench.name,
      title: bench.title,
      quick,
      measuredAt: new Date(benchStarted).toISOString(),
      durationS: 0,
      machine,
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: loadAtStart,
      rows: [],
      details: {},
      notes: [],
    };
    try {
      const outcome = await bench.run({ quick, minutes, log });
      Object.assign(report, outcome);
    } catch (error) {
      report.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
      console.log(`   ERROR: ${report.error}`);
    }
    report.durationS = (Date.now() - benchStarted) / 1000;
    report.loadAverageAtEnd = loadAverage();
    writeFileSync(path.join(outDir, `${bench.name}.json`), `${JSON.stringify(report, null, 2)}\n`);
    console.log(`   done in ${Math.round(report.durationS)} s; load average ${report.loadAverageAtStart.join(' / ')} -> ${report.loadAverageAtEnd.join(' / ')}\n`);
    reports.push(report);
  }
  console.log(table(reports));
  console.log(`\n${Math.round((Date.now() - started) / 1000)} s in all; results in ${path.relative(process.cwd(), outDir) || '.'}/`);
  if (!quick) {
    writeFileSync(path.join(RESULTS_DIR, 'SUMMARY.md'), renderPerformance(readReports(BENCHMARK_ORDER)));
    console.log(`summary (all benchmarks measured so far) in ${path.relative(process.cwd(), path.join(RESULTS_DIR, 'SUMMARY.md'))}`);
  }
  const failed = reports.filter((r) => r.error);
  if (failed.length) {
    console.log(`\n${failed.length} benchmark(s) failed to run: ${failed.map((r) => r.benchmark).join(', ')}`);
    process.exitCode = 1;
  }
  // Worker threads, sockets or timers of a benchmark must not keep the suite alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
