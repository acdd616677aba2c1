// Input schemas used by more than one procedure. The tRPC router and the REST facade validate with the same
// schemas (each procedure declares its own input), so both reject the same things with the same reasons.
import { z } from 'zod';
import { DATASET_ID_PATTERN } from '../../protocol/dataset-id';

export const optimizerInput = z
  .object({
    name: z.enum(['sgd', 'adam']).optional(),
    learningRate: z.number().positive().max(10).optional(),
    momentum: z.number().min(0).max(0.999).optional(),
    beta1: z.number().min(0).max(0.9999).optional(),
    beta2: z.number().min(0).max(0.99999).optional(),
    epsilon: z.number().positive().max(1).optional(),
  })
  .strict();

export const startTrainingInput = z
  .object({
    model: z.enum(['mlp', 'cnn']).optional(),
    /** A registered dataset's id (GET /api/datasets lists them); never a path. */
    dataset: z
      .string()
      .max(64, 'dataset must be a registered dataset id (GET /api/datasets lists them)')
      .regex(DATASET_ID_PATTERN, 'dataset must be a registered dataset id (GET /api/datasets lists them), not a path')
      .optional(),
    /** `rounds` is the original design's name for maxRounds. */
    rounds: z.number().int().positive().max(10_000_000).optional(),
    maxRounds: z.number().int().positive().max(10_000_000).optional(),
    targetAccuracy: z.number().gt(0).max(1).optional(),
    /** Either an optimizer name or a full optimizer object. */
    optimizer: z.union([z.enum(['sgd', 'adam']), optimizerInput]).optional(),
    learningRate: z.number().positive().max(10).optional(),
    batchSize: z.number().int().min(1).max(65_536).optional(),
    evalEvery: z.number().int().min(1).max(100_000).optional(),
    checkpointEvery: z.number().int().min(1).max(100_000).optional(),
    seed: z.number().int().min(0).max(2 ** 31 - 1).optional(),
    roundTimeoutMs: z.number().int().min(100).max(3_600_000).optional(),
    minUpdates: z.number().int().min(1).max(100_000).optional(),
    minCompletion: z.number().min(0).max(1).optional(),
    maxSamples: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
    maxUpdateNorm: z.number().positive().optional(),
  })
  .strict();

export type StartTrainingInput = z.infer<typeof startTrainingInput>;

export const positiveId = z.number().int().positive();
export const idInput = z.object({ id: positiveId });
export const sessionIdInput = z.object({ sessionId: positiveId });
