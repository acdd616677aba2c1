// Defaults for a training session, and the merge of what a user asked for over them.
import { RequestError } from '../../protocol/errors';
import { DEFAULT_OPTIMIZER, type OptimizerName, type SessionConfig } from './types';

/** What a caller may set when starting a session; everything else comes from the defaults. */
export type SessionConfigInput = Partial<Omit<SessionConfig, 'optimizer'>> & {
  optimizer?: Partial<SessionConfig['optimizer']>;
};

export const DEFAULT_SESSION_CONFIG: SessionConfig = {
  model: 'mlp',
  dataset: 'mnist',
  optimizer: { ...DEFAULT_OPTIMIZER.adam, learningRate: 0.002 },
  batchSize: 128,
  maxRounds: null,
  targetAccuracy: null,
  evalEvery: 10,
  checkpointEvery: 50,
  seed: 42,
  roundTimeoutMs: 30_000,
  minUpdates: 1,
  minCompletion: 0.5,
  maxSamples: null,
  // The absolute ceiling on one update's L2 norm (the engine also limits it relative to recent accepted norms).
  // Honest MNIST gradients are about 0.1-10; 1e4 leaves honest work three orders of magnitude of room.
  maxUpdateNorm: 1e4,
};

export function resolveSessionConfig(input: SessionConfigInput, base: SessionConfig = DEFAULT_SESSION_CONFIG): SessionConfig {
  const optimizerName: OptimizerName = input.optimizer?.name ?? base.optimizer.name;
  // Switching optimizer without a learning rate takes that optimizer's default rate, not the other one's.
  const optimizerBase = optimizerName === base.optimizer.name ? base.optimizer : DEFAULT_OPTIMIZER[optimizerName];
  const config: SessionConfig = {
    ...base,
    ...stripUndefined(input),
    optimizer: { ...optimizerBase, ...stripUndefined(input.optimizer ?? {}), name: optimizerName },
  };
  if (config.batchSize < 1) throw new RequestError('BAD_REQUEST', `batchSize must be at least 1 (got ${config.batchSize})`);
  return config;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
