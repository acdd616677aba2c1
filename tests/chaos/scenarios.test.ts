// Chaos scenarios against the real coordinator and agents (child processes, real sockets, real SQLite):
// one undisturbed baseline, then one test per scenario, each judged against the baseline. See
// tests/support/chaos/ for the harness and `npm run chaos` for the same runs from the command line.
// Runs in the 'chaos' vitest project (long timeouts, one file at a time).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBaseline, runScenario, SCENARIOS, type BaselineResult, type ScenarioResult } from '../support/chaos/harness';
import { killAll } from '../support/chaos/processes';
import { formatBaseline, formatReport } from '../support/chaos/report';

const verbose = !!process.env.HYPERGPU_TEST_VERBOSE;
const log = (line: string) => {
  if (verbose) process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`);
};
// The control run (a second undisturbed run) is for the CLI; the test budget goes to the fault scenarios.
const scenarios = SCENARIOS.filter((s) => s.name !== 'undisturbed');

describe('chaos: failures cost neither updates nor accuracy', () => {
  let baseline: BaselineResult;
  const results: ScenarioResult[] = [];

  beforeAll(async () => {
    baseline = await runBaseline({ log });
    if (!baseline.ok) throw new Error(`baseline run failed: ${baseline.error}`);
    process.stderr.write(`${formatBaseline(baseline)}\n`);
  }, 180_000);

  afterAll(async () => {
    await killAll();
    if (baseline && results.length) process.stderr.write(`\n${formatReport(baseline, results)}\n`);
  });

  for (const scenario of scenarios) {
    it(`${scenario.name}: ${scenario.description}`, async () => {
      const result = await runScenario(scenario, baseline, { log });
      results.push(result);
      const failed = result.checks.filter((c) => !c.ok && !c.informational).map((c) => `${c.name}: ${c.detail}`);
      const why = [result.error, ...failed].filter(Boolean).join('\n');
      expect(result.passed, `${scenario.name} failed:\n${why}\n\n${result.diagnostics?.slice(-4000) ?? ''}`).toBe(true);
    }, (scenario.timeoutMs ?? 150_000) + 30_000);
  }
});
