// A strategy decides *what*: how each round is configured for the nodes in it, how the results that arrived
// are combined, and how the combination moves the model (the outer optimizer). The engine asks it; the
// runner carries out what it asks with the aggregator workers and the model store. Flower's Strategy, for
// a synchronous data-parallel round.
//
// A new aggregation rule goes here: a Strategy whose `aggregation` returns another plan kind, and a case in
// the runner's aggregate effect (and the aggregator port) that computes it.
import { applyOptimizerStep, createOptimizerState, type OptimizerState } from '../optimizer';
import type { AggregationPlan as KernelPlan } from '../ports';
import type { AggregationRule, SessionConfig } from '../types';

export interface DeliveredUpdate {
  nodeId: number;
  slot: number;
  samples: number;
}

/** What the aggregator computes for a round: which slots, by which rule (the aggregator port's plan). */
export interface AggregationPlan {
  slots: number[];
  plan: KernelPlan;
}

export interface RoundConfiguration {
  /** Samples each node trains on this round. */
  samplesPerNode: number;
}

export interface Strategy {
  readonly name: string;
  configureRound(nodeIds: readonly number[]): RoundConfiguration;
  aggregation(updates: readonly DeliveredUpdate[]): AggregationPlan;
  /**
   * True when the aggregate is the sample-weighted mean of the updates as they arrived (plan 'weighted-mean'
   * with weights = samples, whatever N): the runner may then fold each accepted update into a running sum on
   * arrival instead of keeping a slot per update. A rule that needs every update at once (median, trimmed
   * mean, Multi-Krum), or that scales an update by something known only later (norm clipping against the
   * round's median), must say false.
   */
  readonly foldsOnArrival: boolean;
  createOptimizerState(paramCount: number): OptimizerState;
  /** Applies the aggregate to the parameters in place (and advances the optimizer state). */
  applyAggregate(state: OptimizerState, params: Float32Array, aggregate: Float32Array): void;
}

/**
 * Today's rule: every node trains `batchSize` samples, the round's gradient is the sample-weighted mean of
 * what arrived, and the session's optimizer (SGD with momentum, or Adam) applies it on the coordinator.
 */
export function sampleWeightedMean(config: SessionConfig): Strategy {
  return {
    name: `sample-weighted mean + ${config.optimizer.name}`,
    foldsOnArrival: true,
    configureRound: () => ({ samplesPerNode: config.batchSize }),
    aggregation: (updates) => ({ slots: updates.map((u) => u.slot), plan: { rule: 'weighted-mean', weights: updates.map((u) => u.samples) } }),
    createOptimizerState: (paramCount) => createOptimizerState(config.optimizer, paramCount),
    applyAggregate: (state, params, aggregate) => applyOptimizerStep(config.optimizer, state, params, aggregate),
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
    aggregation: (updates) => ({ slots: updates.map((u) => u.slot), plan: robustPlan(rule, updates) }),
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

/** The strategy a session runs with, from its aggregation setting. */
export function strategyFor(config: SessionConfig): Strategy {
  const rule = config.aggregation ?? { rule: 'mean' };
  return rule.rule === 'mean' ? sampleWeightedMean(config) : robust(config, rule);
}
