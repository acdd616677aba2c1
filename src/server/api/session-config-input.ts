// Maps the public start-training body (the original REST design's field names) onto the service's input.
import type { StartTrainingInput } from './inputs';
import type { SessionConfigInput } from '../core/session-config';

export function toSessionConfigInput(input: StartTrainingInput): SessionConfigInput {
  const out: SessionConfigInput = {};
  if (input.model) out.model = input.model;
  if (input.dataset) out.dataset = input.dataset;
  const maxRounds = input.maxRounds ?? input.rounds;
  if (maxRounds !== undefined) out.maxRounds = maxRounds;
  if (input.targetAccuracy !== undefined) out.targetAccuracy = input.targetAccuracy;
  if (input.batchSize !== undefined) out.batchSize = input.batchSize;
  if (input.evalEvery !== undefined) out.evalEvery = input.evalEvery;
  if (input.checkpointEvery !== undefined) out.checkpointEvery = input.checkpointEvery;
  if (input.seed !== undefined) out.seed = input.seed;
  if (input.roundTimeoutMs !== undefined) out.roundTimeoutMs = input.roundTimeoutMs;
  if (input.minUpdates !== undefined) out.minUpdates = input.minUpdates;
  if (input.minCompletion !== undefined) out.minCompletion = input.minCompletion;
  if (input.maxSamples !== undefined) out.maxSamples = input.maxSamples;
  if (input.maxUpdateNorm !== undefined) out.maxUpdateNorm = input.maxUpdateNorm;
  if (input.aggregation !== undefined) out.aggregation = input.aggregation;
  if (input.globalBatch !== undefined) out.globalBatch = input.globalBatch;
  if (input.clipFactor !== undefined) out.clipFactor = input.clipFactor;
  if (input.fromCheckpoint !== undefined) out.initFrom = { ...input.fromCheckpoint };
  if (input.localSteps !== undefined) out.localSteps = input.localSteps;
  if (input.overlap !== undefined) out.overlap = input.overlap;
  if (input.outerOptimizer !== undefined) out.outerOptimizer = input.outerOptimizer;
  if (input.codec !== undefined) out.codec = input.codec;
  if (input.topKFraction !== undefined) out.topKFraction = input.topKFraction;
  if (input.rewards !== undefined) out.rewards = input.rewards;
  const optimizer = typeof input.optimizer === 'string' ? { name: input.optimizer } : { ...(input.optimizer ?? {}) };
  if (input.learningRate !== undefined) optimizer.learningRate = input.learningRate;
  if (Object.keys(optimizer).length > 0) out.optimizer = optimizer;
  return out;
}
