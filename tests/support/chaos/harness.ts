// The chaos harness: runs the undisturbed baseline once, then each scenario against it, each on a fresh
// cluster (coordinator + agents as child processes, fresh data directory), bounded in time, and always
// cleaned up. Used by scripts/chaos.ts (CLI) and tests/chaos/*.test.ts (vitest).
import { collect, detections, median, nodeCredits, quantile, recheckLedger, rejectedByReason, roundDuration, type RunRecord } from './analysis';
import { ChaosCluster, DEFAULT_CLUSTER_CONFIG, type ClusterConfig } from './cluster';
import { scenarioByName, SCENARIOS } from './scenarios';
import type { BaselineResult, Check, ScenarioContext, ScenarioDefinition, ScenarioResult } from './types';

export { SCENARIOS, scenarioByName };
export type { BaselineResult, ScenarioResult };

/** Pass criteria shared by every scenario. */
export const CRITERIA = {
  /** |accuracy - baseline accuracy|, as a fraction (0.01 = 1 point). */
  maxAccuracyDelta: 0.01,
  /** A node that goes silent with its socket open must be marked failed within this (ms). */
  silentDetectionMs: 1000,
  /** A node whose connection closes must be marked failed within this (ms). */
  closedDetectionMs: 100,
  /**
   * A run fails when a detection takes longer than this many times its target: the failure was not really
   * detected (a node failed by some later timeout, or never). Below it, the target is reported, not enforced.
   */
  detectionBoundFactor: 5,
} as const;

export interface HarnessOptions extends Partial<ClusterConfig> {
  /** Hard limit per run (baseline or scenario), start-up included. */
  runTimeoutMs?: number;
}

function clusterConfig(options: HarnessOptions): ClusterConfig {
  const { runTimeoutMs: _ignored, ...rest } = options;
  void _ignored;
  return { ...DEFAULT_CLUSTER_CONFIG, ...rest };
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  // Past the limit the work is abandoned (its cluster gets closed under it): its late failure is expected.
  work.catch(() => undefined);
  try {
    return await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} exceeded its ${Math.round(ms / 1000)} s limit`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** One undisturbed run: the reference every scenario is compared with. */
export async function runBaseline(options: HarnessOptions = {}): Promise<BaselineResult> {
  const config = clusterConfig(options);
  const limit = options.runTimeoutMs ?? 120_000;
  const started = Date.now();
  const result: BaselineResult = {
    config: { agents: config.agents, seed: config.seed, maxSamples: config.maxSamples, batchSize: config.batchSize },
    ok: false,
    error: null,
    state: 'not started',
    accuracy: null,
    rounds: 0,
    appliedRounds: 0,
    totalSamples: 0,
    medianRoundMs: null,
    p90RoundMs: null,
    trainingMs: 0,
    durationMs: 0,
    ledgerOk: null,
  };
  let cluster: ChaosCluster | null = null;
  try {
    await withTimeout(
      (async () => {
        config.log('baseline: starting');
        cluster = await ChaosCluster.start(config, limit);
        const end = await cluster.waitForEnd(limit);
        const run = await collect(cluster);
        const applied = run.rounds.filter((r) => r.applied);
        result.state = end.state;
        result.accuracy = run.status.session?.lastTestAccuracy ?? null;
        result.rounds = run.status.round;
        result.appliedRounds = applied.length;
        result.totalSamples = run.status.session?.totalSamples ?? 0;
        result.medianRoundMs = median(applied.map(roundDuration));
        result.p90RoundMs = quantile(applied.map(roundDuration), 0.9);
        result.trainingMs = (applied.at(-1)?.closedAt ?? Date.now()) - cluster.trainingStartedAt;
        result.ledgerOk = run.ledger?.ok ?? null;
        result.ok = end.state === 'completed' && result.accuracy !== null;
        if (!result.ok) result.error = `baseline ended ${end.state} with accuracy ${result.accuracy}`;
      })(),
      limit,
      'the baseline run',
    );
  } catch (error) {
    result.error = message(error);
    if (cluster) result.error += `\n${(cluster as ChaosCluster).diagnostics()}`;
  } finally {
    await (cluster as ChaosCluster | null)?.close();
    result.durationMs = Date.now() - started;
  }
  config.log(`baseline: ${result.state}, accuracy ${result.accuracy}, ${result.appliedRounds} rounds, median round ${result.medianRoundMs} ms, ${(result.durationMs / 1000).toFixed(1)} s`);
  return result;
}

/** Runs one scenario on a fresh cluster and judges it against the baseline. Never throws. */
export async function runScenario(definition: ScenarioDefinition | string, baseline: BaselineResult, options: HarnessOptions = {}): Promise<ScenarioResult> {
  const scenario = typeof definition === 'string' ? scenarioByName(definition) : definition;
  let config = clusterConfig(options);
  if (scenario.configure) config = scenario.configure(config);
  const limit = options.runTimeoutMs ?? scenario.timeoutMs ?? 150_000;
  const started = Date.now();
  const checks: Check[] = [];
  const notes: string[] = [];
  const metrics: Record<string, number | string | boolean | null> = {};
  const result: ScenarioResult = {
    name: scenario.name,
    description: scenario.description,
    passed: false,
    error: null,
    durationMs: 0,
    state: null,
    sessionId: null,
    rounds: null,
    appliedRounds: null,
    modelVersion: null,
    totalSamples: null,
    accuracy: null,
    baselineAccuracy: baseline.accuracy,
    deltaPoints: null,
    failuresDetected: null,
    detections: [],
    updates: { accepted: null, rejectedByReason: {} },
    ledger: null,
    ledgerRecheck: null,
    checks,
    notes,
    metrics,
  };
  let cluster: ChaosCluster | null = null;
  const log = (line: string) => config.log(`${scenario.name}: ${line}`);
  try {
    if (baseline.config.agents !== config.agents || baseline.config.maxSamples !== config.maxSamples || baseline.config.seed !== config.seed) {
      throw new Error('the baseline was run with another agent count, seed or sample budget');
    }
    await withTimeout(
      (async () => {
        log('starting');
        cluster = await ChaosCluster.start({ ...config, log }, limit);
        const c: ChaosCluster = cluster;
        const ctx: ScenarioContext = {
          cluster: c,
          baseline,
          check: (name, ok, detail, informational) => checks.push({ name, ok, detail, informational }),
          note: (text) => notes.push(text),
          metric: (name, value) => (metrics[name] = value),
          metrics,
          log,
        };
        await scenario.run(ctx);
        log('faults done; waiting for the session to end');
        await c.waitForEnd(Math.max(1000, c.remaining()));
        const run = await collect(c);
        judge(ctx, run, result, baseline);
        scenario.analyze?.(ctx, run);
      })(),
      limit,
      `scenario ${scenario.name}`,
    );
  } catch (error) {
    result.error = message(error);
  } finally {
    result.passed = result.error === null && checks.length > 0 && checks.every((c) => c.ok || c.informational);
    if (!result.passed && cluster) result.diagnostics = (cluster as ChaosCluster).diagnostics();
    await (cluster as ChaosCluster | null)?.close();
    result.durationMs = Date.now() - started;
  }
  log(`${result.passed ? 'PASS' : 'FAIL'} in ${(result.durationMs / 1000).toFixed(1)} s`);
  return result;
}

/** The checks every scenario shares, and the numbers of the report. */
function judge(ctx: ScenarioContext, run: RunRecord, result: ScenarioResult, baseline: BaselineResult): void {
  const { check, note } = ctx;
  const status = run.status;
  result.state = status.state;
  result.sessionId = status.sessionId;
  result.rounds = status.round;
  result.modelVersion = status.modelVersion;
  result.appliedRounds = run.ledger?.appliedRounds ?? run.rounds.filter((r) => r.applied).length;
  result.totalSamples = status.session?.totalSamples ?? null;
  result.accuracy = status.session?.lastTestAccuracy ?? null;
  result.updates = {
    accepted: run.ledger?.appliedUpdates ?? run.contributions.filter((c) => c.status === 'applied').length,
    rejectedByReason: rejectedByReason(run),
  };
  result.failuresDetected = run.events ? run.events.filter((e) => e.kind === 'node-failed').length : run.transitions.filter((t) => t.status === 'failed').length;
  result.ledger = run.ledger ? { ...run.ledger } : null;
  result.ledgerRecheck = recheckLedger(run);

  check('session completed', status.state === 'completed', `state ${status.state}${status.session?.message ? ` (${status.session.message})` : ''}, ${result.totalSamples} samples`);
  if (result.accuracy !== null && baseline.accuracy !== null) {
    const delta = result.accuracy - baseline.accuracy;
    result.deltaPoints = Math.round(delta * 10_000) / 100;
    check('accuracy within 1 point of the baseline', Math.abs(delta) <= CRITERIA.maxAccuracyDelta, `${pct(result.accuracy)} vs ${pct(baseline.accuracy)} (${signed(result.deltaPoints)} points)`);
  } else {
    check('accuracy within 1 point of the baseline', false, `accuracy ${result.accuracy}, baseline ${baseline.accuracy}`);
  }
  check('ledger ok (coordinator)', run.ledger?.ok === true, run.ledger ? (run.ledger.problems.length ? run.ledger.problems.slice(0, 5).join('; ') : 'no problems') : `no ledger: ${run.ledgerError}`);
  check('ledger re-checked from the raw rows', result.ledgerRecheck.ok, result.ledgerRecheck.problems.slice(0, 5).join('; ') || `${result.ledgerRecheck.appliedUpdates} updates, ${result.ledgerRecheck.appliedSamples} samples, each once`);

  const credits = nodeCredits(run);
  check('per-node credits match the ledger', credits.ok, credits.detail);

  result.detections = detections(run);
  for (const d of result.detections) {
    const who = `node #${d.nodeId} (${d.action})`;
    const limit = d.expect === 'silent' ? CRITERIA.silentDetectionMs : CRITERIA.closedDetectionMs;
    const kind = d.expect === 'silent' ? 'silent node' : 'closed connection';
    if (d.latencyMs === null) {
      check(`${kind} detected < ${limit} ms`, false, `${who}: never marked failed`);
      continue;
    }
    const precise = d.source !== 'poll';
    if (!precise) note(`${who}: detection time only known from polling (±${100 + 50} ms); judged informationally`);
    const extra = d.expect === 'silent' && d.sinceLastHeartbeatMs !== null ? `, ${d.sinceLastHeartbeatMs} ms after its last heartbeat` : '';
    const detail = `${who}: ${d.latencyMs} ms after the fault${extra} [${d.source}]`;
    // That the failure is detected, and the fault's effect bounded, is what the scenario is about; the latency
    // target itself is a timing target, measured by \`npm run bench -- detection\` over repeated trials, and
    // reported here without failing the run (2 loaded cores shift single measurements by tens of ms).
    check(`${kind} detected`, d.latencyMs < CRITERIA.detectionBoundFactor * limit, detail, !precise);
    check(`${kind} detected < ${limit} ms (target, see npm run bench -- detection)`, d.latencyMs < limit, detail, true);
  }
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`;

export interface ChaosRun {
  baseline: BaselineResult;
  results: ScenarioResult[];
  passed: boolean;
  durationMs: number;
}

/** The baseline once, then every named scenario (in order) against it. */
export async function runChaos(names: string[], options: HarnessOptions = {}, onResult?: (r: ScenarioResult) => void): Promise<ChaosRun> {
  const started = Date.now();
  const scenarios = names.map(scenarioByName);
  const baseline = await runBaseline(options);
  const results: ScenarioResult[] = [];
  if (!baseline.ok) return { baseline, results, passed: false, durationMs: Date.now() - started };
  for (const s of scenarios) {
    const r = await runScenario(s, baseline, options);
    results.push(r);
    onResult?.(r);
  }
  return { baseline, results, passed: results.every((r) => r.passed), durationMs: Date.now() - started };
}
