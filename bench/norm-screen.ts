// Norm screen: how many honest updates the relative norm limit turns away, by rule, on a trace of honest update
// norms from the session defaults (MLP on MNIST, Adam 0.002, 2 nodes x 128 samples a round, every update
// applied), and what the engine's screen does to training. The trace is trained in this process with the agents'
// own Trainer and the coordinator's optimizer; then each rule is replayed over it with the engine's own window
// (the last 64 accepted norms):
//   - refusing over 10x the median (the screen before this benchmark existed),
//   - the engine's normScreen (src/server/core/engine/rounds.ts): clipped over 10x the median, refused over the
//     larger of 100x the median and 10x the 90th percentile.
// A refused shard comes back, and its next update is held to the session's absolute limit only (the engine's
// waiver): the replay offers the same norm again at once as that retry. It does not model what a refusal changes
// in later rounds. Every update of the trace is honest, so each refusal is a node's round of work lost.
// Then the same rounds are trained again with the engine's screen applied as it trains (refused updates left out and
// their shards retried, clipped ones scaled down), and both runs' test accuracy is reported.
//   npm run bench -- norm-screen          (12,000 rounds twice, about 15 minutes on 2 cores; --quick: 2,000)
import { loadTf } from '../src/ml/backend';
import { loadDataset } from '../src/ml/datasets/index';
import { initialParams, modelSpec } from '../src/ml/models';
import { Trainer, type EvaluationResult } from '../src/ml/trainer';
import { applyOptimizerStep, createOptimizerState } from '../src/server/core/optimizer';
import { DEFAULT_SESSION_CONFIG } from '../src/server/core/session-config';
import { arrivalQuantile, keepRecent } from '../src/server/core/deadline';
import { freshCursor, returnShards, takeShards } from '../src/server/core/shards';
import { shardIndices } from '../src/ml/recompute';
import { normScreen } from '../src/server/core/engine/rounds';
import { fmt, row, type BenchOptions, type BenchOutcome, type Benchmark } from './lib/common';

const NODES = 2;
/** The engine's default ratio (create-coordinator.ts: normRatio). */
const RATIO = 10;
/** Updates per stretch for the worst-stretch figure (1,000 rounds of 2 nodes). */
const STRETCH = 2000;

interface Replay {
  refused: number;
  clipped: number;
  worstStretch: number;
}

type Decide = (window: readonly number[], norm: number, waived: boolean) => 'accept' | 'clip' | 'refuse';

/**
 * Replays a rule over the trace: `decide` sees the window of accepted norms and says what happens to `norm`; a
 * refused update is offered again at once as its shard's retry (waived).
 */
function replay(norms: Float32Array, decide: Decide): Replay {
  let window: readonly number[] = [];
  let refused = 0;
  let clipped = 0;
  let worstStretch = 0;
  let stretchRefused = 0;
  for (let i = 0; i < norms.length; i++) {
    const norm = norms[i];
    let verdict = decide(window, norm, false);
    if (verdict === 'refuse') {
      refused++;
      stretchRefused++;
      verdict = decide(window, norm, true);
    }
    if (verdict !== 'refuse') {
      if (verdict === 'clip') clipped++;
      window = keepRecent(window, norm);
    }
    if ((i + 1) % STRETCH === 0 || i === norms.length - 1) {
      worstStretch = Math.max(worstStretch, stretchRefused / ((i % STRETCH) + 1));
      stretchRefused = 0;
    }
  }
  return { refused: refused / norms.length, clipped: clipped / norms.length, worstStretch };
}

/** Refusing over 10x the median of the accepted norms (8 of them at least), as the engine did before. */
function refuseOverTenMedians(window: readonly number[], norm: number, waived: boolean): 'accept' | 'refuse' {
  if (window.length < 8 || waived) return norm <= DEFAULT_SESSION_CONFIG.maxUpdateNorm ? 'accept' : 'refuse';
  return norm > RATIO * arrivalQuantile(window, 0.5)! ? 'refuse' : 'accept';
}

function engineScreen(window: readonly number[], norm: number, waived: boolean): 'accept' | 'clip' | 'refuse' {
  const screen = normScreen(DEFAULT_SESSION_CONFIG.maxUpdateNorm, window, RATIO, waived);
  if (!(norm <= screen.refuseAt)) return 'refuse';
  return screen.clipAt !== null && norm > screen.clipAt ? 'clip' : 'accept';
}

interface Training {
  /** Every update's norm, in arrival order (refused ones included). */
  norms: Float32Array;
  /** Screened runs: updates refused, and accepted clipped (with the smallest clip scale). */
  refused: number;
  clipped: number;
  smallestScale: number;
  /** Rounds with no update applied (every update of the round refused). */
  emptyRounds: number;
  test: EvaluationResult;
  seconds: number;
}

/**
 * Trains `rounds` rounds of the session defaults (2 nodes x batchSize samples, sample-weighted mean, Adam on the
 * coordinator) in this process. `screened`: each update goes through the engine's normScreen as the engine does
 * it (refused ones left out, their shard back at the front of the queue and waived when it returns; clipped ones
 * scaled down to the limit; the window fed as onUpdateIngested feeds it); otherwise every update is applied as is.
 */
async function train(rounds: number, screened: boolean, log: (line: string) => void): Promise<Training & { backend: string }> {
  const { tf, info } = await loadTf();
  const dataset = await loadDataset('mnist');
  const spec = modelSpec(DEFAULT_SESSION_CONFIG.model);
  const params = initialParams(spec, DEFAULT_SESSION_CONFIG.seed);
  const trainer = new Trainer(tf, spec);
  const optimizer = DEFAULT_SESSION_CONFIG.optimizer;
  const state = createOptimizerState(optimizer, spec.paramCount);
  const batch = DEFAULT_SESSION_CONFIG.batchSize;
  const pixels = dataset.inputShape.reduce((a, b) => a * b, 1);
  // Shards as the coordinator hands them out (its data cursor: refused ones back at the front of the queue) and
  // as the agents read them (the session's epoch permutation).
  let cursor = freshCursor();
  const permutation = { key: '', perm: new Uint32Array(0) };
  const waivedShards = new Set<string>();
  const x = new Float32Array(batch * pixels);
  const y = new Int32Array(batch);
  const mean = new Float32Array(spec.paramCount);
  const norms = new Float32Array(rounds * NODES);
  let window: readonly number[] = [];
  const out = { refused: 0, clipped: 0, smallestScale: 1, emptyRounds: 0 };
  const started = Date.now();
  let nextLog = started + 30_000;
  for (let round = 0; round < rounds; round++) {
    trainer.setParams(params);
    mean.fill(0);
    let appliedSamples = 0;
    const taken = takeShards(cursor, NODES, batch, dataset.trainSize);
    cursor = taken.cursor;
    taken.shards.forEach((shard, k) => {
      const samples = shardIndices({ seed: DEFAULT_SESSION_CONFIG.seed, epoch: shard.epoch, shardStart: shard.start, shardCount: shard.count }, dataset.trainSize, permutation);
      dataset.fillTrainBatch(samples, x, y);
      const { gradient } = trainer.computeGradient(x, y, samples.length);
      let sumSquares = 0;
      for (let i = 0; i < gradient.length; i++) sumSquares += gradient[i] * gradient[i];
      const norm = Math.sqrt(sumSquares);
      norms[round * NODES + k] = norm;
      let scale = 1;
      if (screened) {
        const key = `${shard.epoch}:${shard.start}:${shard.count}`;
        const waived = waivedShards.delete(key);
        const screen = normScreen(DEFAULT_SESSION_CONFIG.maxUpdateNorm, window, RATIO, waived);
        if (!(norm <= screen.refuseAt)) {
          out.refused++;
          waivedShards.add(key);
          cursor = returnShards(cursor, [shard]);
          return;
        }
        if (screen.clipAt !== null && norm > screen.clipAt) {
          scale = screen.clipAt / norm;
          out.clipped++;
          out.smallestScale = Math.min(out.smallestScale, scale);
        }
        window = keepRecent(window, waived ? Math.min(norm, normScreen(DEFAULT_SESSION_CONFIG.maxUpdateNorm, window, RATIO).refuseAt) : norm);
      }
      // The sample-weighted mean, as the coordinator's: weight = the shard's samples (an epoch's last one is short).
      for (let i = 0; i < gradient.length; i++) mean[i] += gradient[i] * scale * samples.length;
      appliedSamples += samples.length;
    });
    if (appliedSamples === 0) {
      out.emptyRounds++;
      continue;
    }
    for (let i = 0; i < mean.length; i++) mean[i] /= appliedSamples;
    applyOptimizerStep(optimizer, state, params, mean);
    if (Date.now() >= nextLog) {
      nextLog += 30_000;
      log(`  ${screened ? 'screened' : 'all applied'}: round ${round + 1} of ${rounds}, update norm ${norms[round * NODES].toExponential(2)}`);
    }
  }
  const testSet = dataset.testSet();
  const test = trainer.evaluate(params, testSet.x, testSet.labels, testSet.count);
  return { norms, ...out, test, seconds: (Date.now() - started) / 1000, backend: `${info.name} (${info.device})` };
}

export const normScreenBench: Benchmark = {
  name: 'norm-screen',
  title: 'Norm screen: honest updates refused or clipped by the relative norm limit, old rule and engine',
  inDefault: false,
  async run({ quick, log }: BenchOptions): Promise<BenchOutcome> {
    const rounds = quick ? 2000 : 12_000;
    log(`training ${rounds} rounds of the session defaults (${NODES} nodes x ${DEFAULT_SESSION_CONFIG.batchSize} samples) for the trace...`);
    const trace = await train(rounds, false, log);
    log(`  every update applied: test accuracy ${fmt(trace.test.accuracy * 100, 2)}%; now with the engine's screen applied as it trains...`);
    const screenedRun = await train(rounds, true, log);
    const { norms } = trace;
    // How far the honest tail reaches: each norm over the median of the 64 before it.
    let worstRatio = 0;
    let window: readonly number[] = [];
    for (const norm of norms) {
      if (window.length >= 8) worstRatio = Math.max(worstRatio, norm / arrivalQuantile(window, 0.5)!);
      window = keepRecent(window, norm);
    }
    const before = replay(norms, refuseOverTenMedians);
    const now = replay(norms, engineScreen);
    const pct = (v: number) => `${fmt(v * 100, 2)}%`;
    const updates = rounds * NODES;
    const rows = [
      row('honest updates refused, refusing over 10x the median (before)', pct(before.refused), before.refused * 100, '%', '', undefined, `worst stretch of ${STRETCH.toLocaleString('en-US')} updates ${pct(before.worstStretch)}`),
      row('honest updates refused, engine screen (clip over 10x the median, refuse far past the recent norms)', pct(now.refused), now.refused * 100, '%', '', undefined, `${pct(now.clipped)} accepted clipped; worst stretch of ${STRETCH.toLocaleString('en-US')} updates ${pct(now.worstStretch)} refused`),
      row('largest honest norm over the median of the 64 before it', `${fmt(worstRatio, 0)}x`, worstRatio, 'x', ''),
      row(
        'test accuracy after the rounds: every update applied vs the engine screen applied as it trains',
        `${fmt(trace.test.accuracy * 100, 2)}% vs ${fmt(screenedRun.test.accuracy * 100, 2)}%`,
        (screenedRun.test.accuracy - trace.test.accuracy) * 100,
        'points',
        '',
        undefined,
        `screened run: ${pct(screenedRun.refused / updates)} refused, ${pct(screenedRun.clipped / updates)} clipped (smallest scale ${screenedRun.smallestScale.toExponential(2)}), ${screenedRun.emptyRounds} rounds with nothing applied; test loss ${fmt(trace.test.loss, 4)} vs ${fmt(screenedRun.test.loss, 4)}`,
      ),
    ];
    return {
      rows,
      notes: [
        `${rounds.toLocaleString('en-US')} rounds (${norms.length.toLocaleString('en-US')} updates) trained in ${fmt(trace.seconds, 0)} s on ${trace.backend}, then again with the screen applied (${fmt(screenedRun.seconds, 0)} s), same seed and shards (the coordinator's data cursor and epoch permutation); every update of the trace is honest and applied, so each refusal is honest work lost. A refused update is offered again at once as its shard's retry, held to the absolute limit (the engine's waiver); the replay ignores what a refusal would change in later rounds.`,
      ],
      details: { rounds, nodes: NODES, ratio: RATIO, before, now, worstRatio, normQuantiles: quantilesByStretch(norms), allApplied: { test: trace.test }, screened: { refused: screenedRun.refused, clipped: screenedRun.clipped, smallestScale: screenedRun.smallestScale, emptyRounds: screenedRun.emptyRounds, test: screenedRun.test } },
    };
  },
};

/** p50 and p90 of the norms per stretch: how the distribution spreads as training goes on. */
function quantilesByStretch(norms: Float32Array): Array<{ from: number; p50: number; p90: number }> {
  const out: Array<{ from: number; p50: number; p90: number }> = [];
  for (let from = 0; from < norms.length; from += STRETCH * 2) {
    const part = Array.from(norms.subarray(from, from + STRETCH * 2));
    out.push({ from, p50: arrivalQuantile(part, 0.5)!, p90: arrivalQuantile(part, 0.9)! });
  }
  return out;
}
