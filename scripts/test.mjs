// `npm test`: every check the project has, in the order that fails fastest.
// Installs what the browser tests need (Debian's chromium) when it is missing, so a fresh machine needs
// nothing done by hand.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', TZ: 'UTC' };
const results = [];
// Each vitest step also writes its failures (tests, hooks, modules, unhandled errors) to a summary file, so they
// are named again at the very end of the output (CI keeps only the tail of a long log).
const reportDir = mkdtempSync(join(tmpdir(), 'hypergpu-test-'));
const failures = [];

function vitest(name, project) {
  const summary = join(reportDir, `${project}.txt`);
  const ok = step(name, process.execPath, [
    `${root}/node_modules/vitest/vitest.mjs`, 'run', '--project', project,
    '--reporter=default', '--reporter=./tests/support/failure-summary-reporter.ts',
  ], { env: { ...env, HYPERGPU_FAILURE_SUMMARY: summary } });
  if (!ok) {
    const text = existsSync(summary) ? readFileSync(summary, 'utf8').trim() : '';
    failures.push(text ? `${name}:\n    ${text.split('\n').join('\n    ')}` : `${name}: no failure recorded (the run itself failed; see above)`);
  }
  return ok;
}

function step(name, command, args, options = {}) {
  const started = Date.now();
  process.stdout.write(`\n=== ${name}: ${command} ${args.join(' ')}\n`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env, ...options });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const ok = result.status === 0;
  results.push({ name, ok, seconds });
  process.stdout.write(`=== ${name}: ${ok ? 'ok' : `FAILED (exit ${result.status ?? result.signal})`} in ${seconds} s\n`);
  return ok;
}

function ensureChromium() {
  if (existsSync('/usr/bin/chromium')) return true;
  if (process.getuid?.() !== 0) {
    process.stderr.write('Browser tests need Debian chromium at /usr/bin/chromium: run `sudo apt-get install -y chromium`.\n');
    return false;
  }
  return step('install chromium', 'bash', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null']);
}

const tsx = [`${root}/node_modules/tsx/dist/cli.mjs`];
const only = process.argv[2]; // optional: unit | integration | chaos | e2e
let ok = true;
if (!only) ok = step('typecheck', process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '--noEmit', '-p', '.']) && ok;
// Import zones and cycles (shared/notes/architecture.md, "Dependency direction"); about a second.
if (!only) ok = step('architecture rules', process.execPath, [`${root}/scripts/check-architecture.mjs`]) && ok;
if (!only || only === 'unit') ok = vitest('unit tests', 'unit') && ok;
if (!only || only === 'integration') ok = vitest('integration tests', 'integration') && ok;
if (!only || only === 'chaos') ok = vitest('chaos scenarios', 'chaos') && ok;
if (!only || only === 'e2e') {
  ok = ensureChromium() && ok;
  ok = step('dashboard build', process.execPath, [...tsx, 'src/server/dashboard-build.ts']) && ok;
  ok = step('browser tests', process.execPath, [`${root}/node_modules/@playwright/test/cli.js`, 'test']) && ok;
}

process.stdout.write('\n');
if (failures.length > 0) process.stdout.write(`failing tests:\n${failures.map((f) => `  ${f}`).join('\n')}\n\n`);
for (const r of results) process.stdout.write(`${r.ok ? 'ok    ' : 'FAILED'} ${r.name} (${r.seconds} s)\n`);
const failed = results.filter((r) => !r.ok).length;
process.stdout.write(`steps: ${results.length - failed} passed, ${failed} failed\n`);
process.exit(ok ? 0 : 1);
