// Renders the performance section (bench/results/SUMMARY.md, and README's "## Performance") from the results
// on disk: the latest full (non-quick) run of every benchmark, each target beside its measured value, verdict
// and the load average it was measured at. One renderer for both, so README cannot drift from the results.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { machineInfo, RESULTS_DIR, type BenchReport, type Row } from './common';

function mdEscape(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function verdictCell(r: Row): string {
  // (Results written before rows had `miss` kept it at the front of `note`.)
  const miss = r.miss ?? r.note;
  if (r.verdict === 'MISSED') return `**MISSED**${miss ? `: ${mdEscape(miss)}` : ''}`;
  if (r.verdict === 'info') return '';
  return r.verdict;
}

/** The latest full result of each named benchmark that has one on disk, in the order given. */
export function readReports(names: readonly string[], dir = RESULTS_DIR): BenchReport[] {
  const reports: BenchReport[] = [];
  for (const name of names) {
    try {
      const report = JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8')) as BenchReport;
      // Files from before this suite (another format), and quick runs, are left out.
      if (report.benchmark === name && !report.quick && Array.isArray(report.rows) && report.rows.every((r) => typeof r.metric === 'string') && Array.isArray(report.notes)) reports.push(report);
    } catch {
      // not measured yet
    }
  }
  return reports;
}

export function renderPerformance(reports: readonly BenchReport[]): string {
  const machine = reports[0]?.machine ?? machineInfo();
  const out: string[] = [];
  out.push('## Performance', '');
  out.push(
    `Measured with \`npm run bench\` on the development machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, loopback only. ` +
      'Each figure is a median of several runs after a warm-up; ratios are measured side by side in the same run, and the load average at the time is beside each benchmark. ' +
      'Two cores are shared by the server, the agents, the load generators and whatever else runs on the box, so the load average is recorded per benchmark; treat differences of 10-20% between runs as noise.',
    '',
  );
  out.push('| benchmark | metric | measured | target | verdict | notes |', '| --- | --- | --- | --- | --- | --- |');
  for (const report of reports) {
    if (report.error) out.push(`| ${report.benchmark} | ERROR | ${mdEscape(report.error.split('\n')[0])} | - | error | |`);
    for (const r of report.rows) out.push(`| ${report.benchmark} | ${mdEscape(r.metric)} | ${mdEscape(r.measured)} | ${mdEscape(r.target)} | ${verdictCell(r)} | ${mdEscape(r.verdict === 'MISSED' && !r.miss ? '' : (r.note ?? ''))} |`);
  }
  out.push('', '| benchmark | measured at | duration | load average (1/5/15 min) at start → end |', '| --- | --- | --- | --- |');
  for (const report of reports) {
    out.push(`| ${report.benchmark} | ${report.measuredAt.slice(0, 16).replace('T', ' ')} UTC | ${Math.round(report.durationS)} s | ${report.loadAverageAtStart.join(' / ')} → ${report.loadAverageAtEnd.join(' / ')} |`);
  }
  out.push('', '### Notes', '');
  for (const report of reports) for (const note of report.notes) out.push(`- ${report.benchmark}: ${note}`);
  out.push('', '### Reproduce', '');
  out.push(
    '```bash',
    'npm run bench                        # the default set, 5-10 minutes; writes bench/results/<name>.json and SUMMARY.md',
    'npm run bench -- ingest aggregation  # some of them: ingest aggregation transport throughput scale api live detection',
    'npx tsx bench/readme.ts              # README.md\'s Performance section from these results (--check: fail if stale)',
    'npm run bench -- soak                # 30-minute memory soak (--minutes N to shorten); not in the default set',
    'npm run bench -- --quick             # smoke version of everything in about 2 minutes (results in bench/results/quick/)',
    '```',
    '',
    'Python 3 with numpy is needed for the numpy baselines (they are skipped with a note otherwise). Run on a quiet machine, and check the load average in the results before comparing runs.',
    '',
  );
  return out.join('\n');
}


/** Every benchmark of the suite, in the order the summary lists them (bench/run.ts runs them in this order). */
export const BENCHMARK_ORDER = ['ingest', 'aggregation', 'comm', 'transport', 'throughput', 'scale', 'memory', 'api', 'live', 'detection', 'trpc-read', 'soak', 'robust', 'fedavg', 'overlap', 'norm-screen'] as const;

/** README with its "## Performance" section (up to the next "## " heading) replaced by `section`. */
export function replaceReadmeSection(readme: string, section: string): string {
  const start = readme.indexOf('\n## Performance\n');
  if (start < 0) throw new Error('README.md has no "## Performance" section to replace');
  const next = readme.indexOf('\n## ', start + 1);
  const end = next < 0 ? readme.length : next;
  return `${readme.slice(0, start + 1)}${section.trimEnd()}\n${readme.slice(end)}`;
}
