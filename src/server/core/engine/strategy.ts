// A strategy decides *what*: how each round is configured for the nodes in it, how the results that arrived
// are combined, and how the combination moves the model (the outer optimizer). The engine asks it; the
// runner carries out what it asks with the aggregator workers and the model store. Flower's Strategy, for
// a synchronous data-parallel round.
//
// A new aggregation rule goes here: a Strategy whose `aggregation` returns another plan kind, and a case in
// the runner's aggregate effect (and the aggregator port) that computes it.
import { chooseLocalSteps } from '../adaptive';
import { applyNesterovStep, applyOptimizerStep, createOptimizerState, createOuterOptimizerState, DEFAULT_OUTER_OPTIMIZER, nesterovStepRule, outerStepRule, type OptimizerState, type OuterStepRule } from '../optimizer';
import type { AggregationPlan as KernelPlan } from '../ports';
import type { AggregationRule, SessionConfig } from '../types';
import { clipScales } from './robust-scoring';
import { shareSamples, sizingSpeeds } from './work-sizing';

export interface DeliveredUpdate {
  nodeId: number;
  slot: number;
  samples: number;
  /** L2 norm of the update, measured when it was ingested (absent: unknown, never clipped). */
  norm?: number;
  /** The relative norm limit it was over when accepted (engine/rounds.ts): it is scaled down to this length. */
  clipTo?: number;
}

/** What the aggregator computes for a round: which slots, by which rule (the aggregator port's plan). */
export interface AggregationPlan {
  slots: number[];
  plan: KernelPlan;
  /**
   * Norm clipping: a factor per slot (same order) the runner scales the slot by before aggregating; absent when
   * no update is clipped. See robust-scoring.ts.
   */
  scales?: number[];
}

/**
 * Adds norm clipping to a plan: the session's (clipFactor x the round's median norm) and the engine's relative
 * limit (each update over it when accepted, down to it); the smaller scale wins. Nothing when no update is over
 * either.
 */
function withClipping(config: SessionConfig, updates: readonly DeliveredUpdate[], plan: Omit<AggregationPlan, 'scales'>): AggregationPlan {
  const round = config.clipFactor === undefined ? null : clipScales(updates.map((u) => u.norm ?? 0), config.clipFactor);
  const scales = updates.map((u, i) => Math.min(round ? round[i] : 1, u.clipTo !== undefined && u.norm !== undefined && u.norm > u.clipTo ? u.clipTo / u.norm : 1));
  return scales.some((s) => s < 1) ? { ...plan, scales } : plan;
}

export interface RoundConfiguration {
  /** Samples each node trains on this round (the default share). */
  samplesPerNode: number;
  /** Samples per node, in the order of the nodes given, when work is sized to speed; 0: left out this round. */
  shares?: number[];
  /** Local-steps rounds: inner steps per node (each of the session's batchSize); absent for gradient rounds. */
  localSteps?: number;
}

/** A node the strategy may give work to, with its speed (samples/s) and whether the coordinator measured it. */
export interface CandidateNode {
  id: number;
  samplesPerSecond: number;
  measured: boolean;
}

/** What the engine measured that a strategy may size a round by (null: not measured yet). */
export interface RoundMeasurements {
  /** One inner step of `batchSize` samples on the slowest node of the round (ms). */
  msPerStep: number | null;
  /** The last round's time not spent computing (model out, update in, aggregation) (ms). */
  commMsPerRound: number | null;
}

export interface Strategy {
  readonly name: string;
  configureRound(nodes: readonly CandidateNode[], measured?: RoundMeasurements): RoundConfiguration;
  aggregation(updates: readonly DeliveredUpdate[]): AggregationPlan;
  /**
   * True when the aggregate is the sample-weighted mean of the updates as they arrived (plan 'weighted-mean'
   * with weights = samples, whatever N): the runner may then fold each accepted update into a running sum on
   * arrival instead of keeping a slot per update (norm clipping included: the runner rescales the few clipped
   * ones at the close). A rule that needs every update at once (median, trimmed mean, Multi-Krum) must say false.
   */
  readonly foldsOnArrival: boolean;
  createOptimizerState(paramCount: number): OptimizerState;
  /** Applies the aggregate to the parameters in place (and advances the optimizer state). */
  applyAggregate(state: OptimizerState, params: Float32Array, aggregate: Float32Array): void;
  /** applyAggregate's step as data: what the model store hands a SIMD kernel (which must give the same bits). */
  readonly outerStep: OuterStepRule;
}

/**
 * Today's rule: every node trains `batchSize` samples, the round's gradient is the sample-weighted mean of
 * what arrived, and the session's optimizer (SGD with momentum, or Adam) applies it on the coordinator.
 */
export function sampleWeightedMean(config: SessionConfig): Strategy {
  return {
    name: `sample-weighted mean + ${config.optimizer.name}`,
    // Each update is checked and added into the round's running sum as it arrives (services/arrival-fold.ts):
    // no slot per update, and nothing left to read at the close but the sum (and, with norm clipping, the few
    // updates over the limit, scaled down from their received bytes). Not with a codec: its updates decode into
    // slots.
    foldsOnArrival: config.codec === undefined || config.codec === 'float32',
    configureRound: (nodes) =>
      config.globalBatch === undefined
        ? { samplesPerNode: config.batchSize }
        : { samplesPerNode: config.batchSize, shares: shareSamples(config.globalBatch, sizingSpeeds(nodes)) },
    aggregation: (updates) => withClipping(config, updates, { slots: updates.map((u) => u.slot), plan: { rule: 'weighted-mean', weights: updates.map((u) => u.samples) } }),
    createOptimizerState: (paramCount) => createOptimizerState(config.optimizer, paramCount),
    applyAggregate: (state, params, aggregate) => applyOptimizerStep(config.optimizer, state, params, aggregate),
    outerStep: outerStepRule(config.optimizer),
  };
}

/**
 * A robust rule instead of the mean (trimmed mean, coordinate-wise median, Multi-Krum), computed by the SIMD
 * kernels of the aggregator workers; the same outer optimizer. With too few updates for the rule (Multi-Krum
 * needs N > 2f + 2) the round falls back to the median, and with one or two updates to the mean: what a rule
 * tolerates shrinks with N, and a round must still close.
 */
export function robust(config: SessionConfig, rule: Exclude<AggregationRule, { rule: 'mean' }>): Strategy {
  const mean = sampleWeightedMean(config);
  return {
    ...mean,
    name: `${ruleName(rule)} + ${config.optimizer.name}`,
    foldsOnArrival: false,
    aggregation: (updates) => withClipping(config, updates, { slots: updates.map((u) => u.slot), plan: robustPlan(rule, updates) }),
  };
}

export function robustPlan(rule: Exclude<AggregationRule, { rule: 'mean' }>, updates: readonly DeliveredUpdate[]): KernelPlan {
  const n = updates.length;
  if (n <= 2) return { rule: 'weighted-mean', weights: updates.map((u) => u.samples) };
  switch (rule.rule) {
    case 'median':
      return { rule: 'median' };
    case 'trimmed-mean': {
      // At least one from each end (else it is the plain mean), and never so many that none is left.
      const trim = Math.min(Math.floor((n - 1) / 2), Math.max(1, Math.floor(rule.trimFraction * n)));
      return { rule: 'trimmed-mean', trim };
    }
    case 'multi-krum': {
      const f = rule.byzantine;
      return n > 2 * f + 2 ? { rule: 'multi-krum', f, m: n - f } : { rule: 'median' };
    }
  }
}

export function ruleName(rule: AggregationRule): string {
  switch (rule.rule) {
    case 'mean':
      return 'sample-weighted mean';
    case 'median':
      return 'coordinate-wise median';
    case 'trimmed-mean':
      return `trimmed mean (${rule.trimFraction} at each end)`;
    case 'multi-krum':
      return `Multi-Krum (f = ${rule.byzantine})`;
  }
}

/** True when the session runs local steps (DiLoCo / FedAvg) rather than synchronous gradient rounds. */
export function isLocalSteps(config: SessionConfig): boolean {
  return config.localSteps === 'auto' || (typeof config.localSteps === 'number' && config.localSteps > 1);
}

/**
 * Local steps around any aggregation rule: each node trains H x batchSize samples with the session's optimizer
 * (on the agent) and sends a pseudo-gradient; the rule combines them (sample-weighted for the mean) and the
 * outer optimizer, SGD with Nesterov momentum, moves the model. The global batch per outer step is
 * nodes x H x batchSize; H is fixed by the session or chosen per round (core/adaptive.ts).
 */
export function localSteps(config: SessionConfig, inner: Strategy): Strategy {
  const outer = config.outerOptimizer ?? DEFAULT_OUTER_OPTIMIZER;
  return {
    ...inner,
    name: `local steps (H = ${config.localSteps}) + ${inner.name.replace(/ \+ \w+$/, '')} + Nesterov outer lr ${outer.learningRate}`,
    configureRound: (_nodeIds, measured) => {
      const h = config.localSteps === 'auto' ? chooseLocalSteps({ msPerStep: measured?.msPerStep ?? null, commMsPerRound: measured?.commMsPerRound ?? null }) : Math.max(1, Math.floor(Number(config.localSteps)));
      return { samplesPerNode: h * config.batchSize, localSteps: h };
    },
    createOptimizerState: (paramCount) => createOuterOptimizerState(paramCount),
    applyAggregate: (state, params, aggregate) => applyNesterovStep(outer, state, params, aggregate),
    outerStep: nesterovStepRule(outer),
  };
}

/** How a session combines its updates, for people: the rule, clipping, and whether updates fold on arrival. */
export function describeAggregation(config: SessionConfig): string {
  const rule = ruleName(config.aggregation ?? { rule: 'mean' });
  const clip = config.clipFactor === undefined ? '' : `, clipped at ${config.clipFactor}x the median norm`;
  return `${rule}${clip}${strategyFor(config).foldsOnArrival ? ', each update folded in as it arrives' : ''}`;
}

/** The strategy a session runs with, from its aggregation and local-steps settings. */
export function strategyFor(config: SessionConfig): Strategy {
  const rule = config.aggregation ?? { rule: 'mean' };
  const base = rule.rule === 'mean' ? sampleWeightedMean(config) : robust(config, rule);
  return isLocalSteps(config) ? localSteps(config, base) : base;
}
