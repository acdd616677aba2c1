// Regenerates README.md's "## Performance" section from bench/results/*.json (the latest full run of each
// benchmark), with the same renderer as bench/results/SUMMARY.md: measured values, targets, verdicts, the
// load average of each run, and the notes on method.
//   npx tsx bench/readme.ts           rewrite the section
//   npx tsx bench/readme.ts --check   write nothing; exit 1 when the section differs from the results
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './lib/common';
import { BENCHMARK_ORDER, readReports, renderPerformance, replaceReadmeSection } from './lib/summary';

const readmePath = path.join(ROOT, 'README.md');
const readme = readFileSync(readmePath, 'utf8');
const reports = readReports(BENCHMARK_ORDER);
if (reports.length === 0) {
  console.error('no full benchmark results in bench/results/: run npm run bench first');
  process.exit(1);
}
const next = replaceReadmeSection(readme, renderPerformance(reports));
if (process.argv.includes('--check')) {
  if (next !== readme) {
    console.error('README.md\'s Performance section is not what bench/results renders: run npx tsx bench/readme.ts');
    process.exit(1);
  }
  console.log('README.md\'s Performance section matches bench/results');
} else {
  writeFileSync(readmePath, next);
  console.log(`README.md: Performance section rendered from ${reports.map((r) => r.benchmark).join(', ')}`);
}
