// Chaos harness CLI: `npm run chaos -- --scenario <name|all> [--json]`.
// Runs an undisturbed baseline once, then each scenario against it (real coordinator and agents as child
// processes, faults injected by signals and TCP fault proxies), prints a table, exits 1 if any failed.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runChaos, SCENARIOS } from '../tests/support/chaos/harness';
import { killAll } from '../tests/support/chaos/processes';
import { formatReport, reportJson } from '../tests/support/chaos/report';

const USAGE = `Usage: npm run chaos -- --scenario <name|all> [options]

  --scenario NAME    ${SCENARIOS.map((s) => s.name).join(', ')}, or all (default all);
                     repeat or comma-separate for several
  --json             print the results as JSON (instead of the table) on stdout
  --out FILE         also write the JSON results to FILE
  --agents N         agents per run (default 4)
  --max-samples N    sample budget of every run (default 48000)
  --seed N           session seed (default 7)
  --verbose          echo the coordinator's and agents' output
  --keep             keep each run's data directory

Scenarios:
${SCENARIOS.map((s) => `  ${s.name.padEnd(24)} ${s.description}`).join('\n')}
`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        scenario: { type: 'string', multiple: true },
        json: { type: 'boolean' },
        out: { type: 'string' },
        agents: { type: 'string' },
        'max-samples': { type: 'string' },
        seed: { type: 'string' },
        verbose: { type: 'boolean' },
        keep: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const requested = (values.scenario ?? ['all']).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  const names = requested.includes('all') ? SCENARIOS.map((s) => s.name) : requested;
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) {
    process.stderr.write(`unknown scenario(s): ${unknown.join(', ')}\n\n${USAGE}`);
    return 2;
  }
  const int = (name: string, raw: string | undefined) => {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer (got ${raw})`);
    return n;
  };
  const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`);
  const options = {
    agents: int('agents', values.agents),
    maxSamples: int('max-samples', values['max-samples']),
    seed: int('seed', values.seed),
    verbose: values.verbose ?? false,
    keepDataDir: values.keep ?? false,
    log,
  };
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  log(`chaos: baseline, then ${names.join(', ')}`);
  const run = await runChaos(names, defined);
  const json = reportJson(run.baseline, run.results, run.durationMs);
  if (values.out) writeFileSync(values.out, `${JSON.stringify(json, null, 2)}\n`);
  if (values.json) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  else process.stdout.write(`\n${formatReport(run.baseline, run.results)}\n\ntotal ${(run.durationMs / 1000).toFixed(1)} s\n`);
  if (!run.baseline.ok) process.stderr.write(`baseline failed:\n${run.baseline.error}\n`);
  for (const r of run.results) if (!r.passed && r.diagnostics && values.verbose) process.stderr.write(`\n--- ${r.name} diagnostics\n${r.diagnostics}\n`);
  return run.passed ? 0 : 1;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(`\n${signal}: killing every process of the run...\n`);
    void killAll().finally(() => process.exit(130));
  });
}

main()
  .then(async (code) => {
    await killAll();
    process.exit(code);
  })
  .catch(async (error) => {
    process.stderr.write(`chaos harness failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    await killAll();
    process.exit(1);
  });
