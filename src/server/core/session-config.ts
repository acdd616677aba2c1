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

/**
 * What a session gets by default in a pool open to strangers (--open-pool): a trimmed mean dropping a fifth of
 * the updates at each end of every coordinate, and norm clipping at 3x the round's median norm. Why these: with
 * strangers, some updates will be wrong on purpose or by accident, and the plain mean lets a single one steer the
 * model. The trimmed mean tolerates up to a fifth of bad updates a round (1 of 5, 2 of 10) while averaging the
 * middle 60%, so it loses less statistical efficiency than the median (which keeps one value per coordinate), and
 * unlike Multi-Krum it needs no guess of how many are bad; clipping caps what a scaled-up update can do before the
 * rule even sees it. It costs about 2x the mean in the SIMD kernels (bench: npm run bench -- aggregation). A
 * session that asks for another rule (or `{"rule":"mean"}`) gets it.
 */
export const OPEN_POOL_DEFAULTS: SessionConfigInput = {
  aggregation: { rule: 'trimmed-mean', trimFraction: 0.2 },
  clipFactor: 3,
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
  // Overlap trains the next shard from the agent's own end weights and re-bases onto the next model: that needs a
  // pseudo-gradient (start minus end weights). A synchronous round's gradient is taken at the model itself.
  const local = config.localSteps === 'auto' || (typeof config.localSteps === 'number' && config.localSteps > 1);
  if (config.overlap && !local) throw new RequestError('BAD_REQUEST', `overlap needs local steps (localSteps above 1 or 'auto'), got localSteps ${config.localSteps ?? 1}`);
  return config;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
