// A strategy decides *what*: how each round is configured for the nodes in it, how the results that arrived
// are combined, and how the combination moves the model (the outer optimizer). The engine asks it; the
// runner carries out what it asks with the aggregator workers and the model store. Flower's Strategy, for
// a synchronous data-parallel round.
//
// A new aggregation rule goes here: a Strategy whose `aggregation` returns another plan kind, and a case in
// the runner's aggregate effect (and the aggregator port) that computes it.
import { applyOptimizerStep, createOptimizerState, type OptimizerState } from '../optimizer';
import type { SessionConfig } from '../types';

export interface DeliveredUpdate {
  nodeId: number;
  slot: number;
  samples: number;
}

/** What the aggregator computes for a round. */
export type AggregationPlan = { rule: 'weighted-mean'; slots: number[]; weights: number[] };

export interface RoundConfiguration {
  /** Samples each node trains on this round. */
  samplesPerNode: number;
}

export interface Strategy {
  readonly name: string;
  configureRound(nodeIds: readonly number[]): RoundConfiguration;
  aggregation(updates: readonly DeliveredUpdate[]): AggregationPlan;
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
    configureRound: () => ({ samplesPerNode: config.batchSize }),
    aggregation: (updates) => ({
      rule: 'weighted-mean',
      slots: updates.map((u) => u.slot),
      weights: updates.map((u) => u.samples),
    }),
    createOptimizerState: (paramCount) => createOptimizerState(config.optimizer, paramCount),
    applyAggregate: (state, params, aggregate) => applyOptimizerStep(config.optimizer, state, params, aggregate),
  };
}

/** The strategy a session runs with. One today; the session config will name others. */
export function strategyFor(config: SessionConfig): Strategy {
  return sampleWeightedMean(config);
}
