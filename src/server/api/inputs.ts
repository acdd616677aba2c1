// Input schemas used by more than one procedure. The tRPC router and the REST facade validate with the same
// schemas (each procedure declares its own input), so both reject the same things with the same reasons.
import { z } from 'zod';
import { DATASET_ID_PATTERN } from '../../protocol/dataset-id';

export const optimizerInput = z
  .object({
    name: z.enum(['sgd', 'adam']).optional(),
    // Bounds of the optimizer's own math: a rate past 10 only diverges; momentum and betas below 1 keep the
    // moving averages finite; epsilon above 1 would swamp Adam's step.
    learningRate: z.number().positive().max(10).optional(),
    momentum: z.number().min(0).max(0.999).optional(),
    beta1: z.number().min(0).max(0.9999).optional(),
    beta2: z.number().min(0).max(0.99999).optional(),
    epsilon: z.number().positive().max(1).optional(),
  })
  .strict();

/**
 * Every numeric setting is bounded so that no value, however chosen, can hurt the coordinator (its memory, disk,
 * database or the honest nodes' work); values that merely train badly (a high learning rate) stay the operator's
 * call. Each bound says why. zod refuses NaN and Infinity for every number here.
 */
export const SETTING_BOUNDS = {
  /** Honest MNIST MLP/CNN gradient norms are about 0.1-10; one update at 1e300 would outweigh every honest one. */
  maxUpdateNorm: 1e4,
  /** At least a tenth of the assigned nodes must answer: at 0 a round closes on a single node's word. */
  minCompletion: 0.1,
  /** Each checkpoint writes the whole model to disk (and rows to the database): every round would flood both. */
  checkpointEvery: 5,
  /** Each evaluation queues a copy of the model for a pass over the test set: every round, they pile up in memory. */
  evalEvery: 5,
  /** A round that times out sooner than a node can train fails honest nodes and commits empty rounds many times a second. */
  roundTimeoutMs: 1_000,
} as const;

export const startTrainingInput = z
  .object({
    model: z.enum(['mlp', 'cnn', 'mlp2nn']).optional(),
    /** A registered dataset's id (GET /api/datasets lists them); never a path. */
    dataset: z
      .string()
      .max(64, 'dataset must be a registered dataset id (GET /api/datasets lists them)')
      .regex(DATASET_ID_PATTERN, 'dataset must be a registered dataset id (GET /api/datasets lists them), not a path')
      .optional(),
    /** `rounds` is the original design's name for maxRounds. Ending a session sooner or later costs nothing. */
    rounds: z.number().int().positive().max(10_000_000).optional(),
    maxRounds: z.number().int().positive().max(10_000_000).optional(),
    targetAccuracy: z.number().gt(0).max(1).optional(),
    /** Either an optimizer name or a full optimizer object. */
    optimizer: z.union([z.enum(['sgd', 'adam']), optimizerInput]).optional(),
    /** Past 10 every optimizer diverges; below it, a bad rate only trains badly. */
    learningRate: z.number().positive().max(10).optional(),
    /**
     * Samples per node per round. Below 8 a round is mostly overhead (a commit per handful of samples); past 65,536
     * a node holds a batch of that many images in memory for one step.
     */
    batchSize: z.number().int().min(8).max(65_536).optional(),
    evalEvery: z.number().int().min(SETTING_BOUNDS.evalEvery).max(100_000).optional(),
    checkpointEvery: z.number().int().min(SETTING_BOUNDS.checkpointEvery).max(100_000).optional(),
    seed: z.number().int().min(0).max(2 ** 31 - 1).optional(),
    /** At most an hour: a round waits that long at most for a silent node (heartbeats fail dead ones sooner). */
    roundTimeoutMs: z.number().int().min(SETTING_BOUNDS.roundTimeoutMs).max(3_600_000).optional(),
    /** A quorum larger than any pool this coordinator can hold would stall every round. */
    minUpdates: z.number().int().min(1).max(10_000).optional(),
    minCompletion: z.number().min(SETTING_BOUNDS.minCompletion).max(1).optional(),
    /** A sample budget only ends the session sooner or later. */
    maxSamples: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
    maxUpdateNorm: z.number().positive().max(SETTING_BOUNDS.maxUpdateNorm).optional(),
    /**
     * How updates are combined: the sample-weighted mean (default), or a robust rule that bounds what a minority of
     * bad updates can do. trimFraction below one half (a trimmed mean of nothing is no mean); Multi-Krum tolerates
     * at most 1,000 bad updates a round (it compares every pair: N² work).
     */
    aggregation: z
      .discriminatedUnion('rule', [
        z.object({ rule: z.literal('mean') }).strict(),
        z.object({ rule: z.literal('trimmed-mean'), trimFraction: z.number().gt(0).lt(0.5) }).strict(),
        z.object({ rule: z.literal('median') }).strict(),
        z.object({ rule: z.literal('multi-krum'), byzantine: z.number().int().min(1).max(1000) }).strict(),
      ])
      .optional(),
    /**
     * Samples per optimizer step, shared among the nodes in proportion to their measured speed (absent: batchSize
     * per node). At least 8; at most 1,048,576 (one step of a whole dataset several times over).
     */
    globalBatch: z.number().int().min(8).max(1_048_576).optional(),
    /** Clip each update to this many times the round's median update norm (1 to 1,000; absent: no clipping). */
    clipFactor: z.number().min(1).max(1000).optional(),
    /**
     * Start from a checkpoint (GET /api/sessions/{id}/checkpoints lists them): its weights, a fresh optimizer, and
     * its session's settings as the defaults for what this body leaves out.
     */
    fromCheckpoint: z.object({ sessionId: z.number().int().positive(), round: z.number().int().min(0) }).strict().optional(),
    /**
     * Local steps per round (DiLoCo / FedAvg): 1 is synchronous gradient rounds; 'auto' picks H from measured
     * compute and communication times. At most 10,000: a round of H x batchSize samples must end within its deadline.
     */
    localSteps: z.union([z.number().int().min(1).max(10_000), z.literal('auto')]).optional(),
    /**
     * Local-steps sessions: each agent trains its next round's shard (reserved for it) while its update travels and
     * the next model comes back, instead of idling for the round trip. Needs localSteps above 1 or 'auto'.
     */
    overlap: z.boolean().optional(),
    /** The outer optimizer of local steps (SGD with Nesterov momentum): DiLoCo uses lr 0.7, momentum 0.9. */
    outerOptimizer: z.object({ learningRate: z.number().positive().max(10), momentum: z.number().min(0).lt(1) }).strict().optional(),
    /** How agents send updates: float32 (default), fp16, int8 (blockwise), top-k (with error feedback), or auto (per node). */
    codec: z.enum(['float32', 'fp16', 'int8', 'top-k', 'auto']).optional(),
    /** top-k: the share of values sent, at least 1e-4 (a k of 0 sends nothing). */
    topKFraction: z.number().min(1e-4).max(1).optional(),
    /** Reward policy in base units (18 decimals) as decimal strings; epochBudget null: uncapped. */
    rewards: z
      .object({ ratePerSample: z.string().regex(/^\d{1,40}$/), epochBudget: z.string().regex(/^\d{1,40}$/).nullable() })
      .strict()
      .optional(),
  })
  .strict();

export type StartTrainingInput = z.infer<typeof startTrainingInput>;

export const positiveId = z.number().int().positive();
export const idInput = z.object({ id: positiveId });
export const sessionIdInput = z.object({ sessionId: positiveId });

/** Rounds per page of a session's rounds or contributions: a long session is read a page at a time. */
export const MAX_ROUNDS_PER_PAGE = 10_000;

/** A session and a page of its rounds: those after `afterRound`, at most `rounds` of them (default 1,000). */
export const roundPageInput = z.object({
  sessionId: positiveId,
  afterRound: z.number().int().min(0).default(0),
  rounds: z.number().int().min(1).max(MAX_ROUNDS_PER_PAGE).default(1000),
});

/** One checkpoint of a session, by the round it was written at. */
export const checkpointInput = z.object({ sessionId: positiveId, round: z.number().int().min(0) });

/**
 * A node by its numeric id or its name (people type what the table shows). Names follow the agent protocol's
 * rules (printable, at most 64 characters); a string of digits is an id.
 */
export const nodeKeyInput = z.object({ id: z.union([positiveId, z.string().min(1).max(64)]) });

/** Kick a node: disconnected, no further work or credit in this session; `banSeconds` also refuses its name that long. */
export const kickInput = z
  .object({
    id: z.union([positiveId, z.string().min(1).max(64)]),
    /** At most 30 days: bans live in memory and end at a restart anyway. */
    banSeconds: z.number().int().min(1).max(30 * 24 * 3600).optional(),
    reason: z.string().max(200).optional(),
  })
  .strict();

/** Ban an address (IPv4 or IPv6 as the socket reports it): its agent sockets are closed and refused until then. */
export const banAddressInput = z
  .object({
    address: z.union([z.ipv4(), z.ipv6()]),
    seconds: z.number().int().min(1).max(30 * 24 * 3600),
    reason: z.string().max(200).optional(),
  })
  .strict();
