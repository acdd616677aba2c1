// Control messages on the agent channel: small versioned JSON text frames, in both directions. Tensors never
// travel here (see frame.ts). Each message is a zod schema and its type is inferred from it, so the agent
// and the coordinator check what they receive against the one definition both sides are built from.
import { z } from 'zod';
import { DATASET_ID_PATTERN } from './dataset-id';

export const AGENT_PROTOCOL_VERSION = 1;

/** Agent-supplied strings end up in logs and the dashboard: printable characters only, bounded. */
const printable = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[^\p{Cc}\p{Cf}]*$/u, 'must not contain control or formatting characters');

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'address must be 0x and 40 hex digits');

export const nodeName = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'name must be 1-64 letters, digits, dot, dash or underscore');

export const nodeCapabilitiesSchema = z.object({
  backend: printable(64),
  device: printable(256),
  /** Samples per second the agent measured on itself at start. */
  samplesPerSecond: z.number().finite().min(0).max(1e9),
  agentVersion: printable(64),
  hostname: printable(256),
});
export type NodeCapabilities = z.infer<typeof nodeCapabilitiesSchema>;

const u32 = z.number().int().min(0).max(0xffff_ffff);

/** The optimizer an agent runs its local steps with (same fields as the coordinator's optimizer settings). */
export const innerOptimizerSchema = z.object({
  name: z.enum(['sgd', 'adam']),
  learningRate: z.number().finite().positive().max(100),
  momentum: z.number().finite().min(0).max(1),
  beta1: z.number().finite().min(0).max(1),
  beta2: z.number().finite().min(0).max(1),
  epsilon: z.number().finite().positive().max(1),
});
export type InnerOptimizer = z.infer<typeof innerOptimizerSchema>;

/** One assignment: which shard of the epoch permutation a node trains on in a round. */
export const assignmentSchema = z.object({
  sessionId: u32,
  round: u32,
  modelVersion: u32,
  nodeId: u32,
  /** Bound to this (round, shard): a retry of the round after a restart gets a new attempt number. */
  attempt: u32,
  epoch: u32,
  /** Slice [start, start + count) of the epoch permutation, taken modulo the training set size. */
  shardStart: u32,
  shardCount: u32,
  batchSize: u32,
  deadlineAt: z.number().finite(),
  /**
   * Local steps (DiLoCo / FedAvg): take this many inner optimizer steps, each on `batchSize` consecutive samples
   * of the shard, with `innerOptimizer`, and send start minus end weights (a pseudo-gradient frame). Absent: send
   * the mean gradient over the shard (synchronous rounds).
   */
  localSteps: z.number().int().min(1).max(100_000).optional(),
  innerOptimizer: innerOptimizerSchema.optional(),
  /** The codec the update travels in (absent: float32); the agent keeps an error-feedback residual for lossy ones. */
  codec: z.enum(['float32', 'fp16', 'int8', 'top-k']).optional(),
  /** top-k: the share of values kept. */
  topKFraction: z.number().gt(0).max(1).optional(),
  /**
   * Overlap (local-steps sessions that ask for it): the shard this node is reserved for the next round, so it can
   * start training it from its own end weights as soon as it sent this round's update, and re-base onto the next
   * model when that arrives. A hint only: the next round's assignment is what counts, and the agent uses its head
   * start only when that assignment names the same shard. Older agents ignore the field. `outer`: the session's
   * outer optimizer (SGD with Nesterov momentum), with which the agent predicts the next model from its own update
   * and starts there rather than from its end weights (eager updates, Kale et al. 2025).
   */
  next: z
    .object({
      epoch: u32,
      shardStart: u32,
      shardCount: u32,
      outer: z.object({ learningRate: z.number().finite().positive().max(10), momentum: z.number().finite().min(0).lt(1) }).optional(),
    })
    .optional(),
});
export type Assignment = z.infer<typeof assignmentSchema>;

export const sessionDescriptorSchema = z.object({
  sessionId: u32,
  model: z.enum(['mlp', 'cnn', 'mlp2nn']),
  /** A dataset id (never a path): each side maps it to a folder of its own. */
  dataset: z.string().regex(DATASET_ID_PATTERN, 'dataset must be a dataset id, not a path'),
  seed: z.number().int(),
  paramCount: u32,
});
export type SessionDescriptor = z.infer<typeof sessionDescriptorSchema>;

/** Agent -> coordinator. */
export const agentMessageSchema = z.discriminatedUnion('type', [
  z.object({
    v: z.literal(1),
    type: z.literal('hello'),
    name: nodeName,
    capabilities: nodeCapabilitiesSchema,
    /** The secret issued at this name's first registration; presented on every later one. */
    token: z.string().min(16).max(256).optional(),
    /** An operator-issued join token: needed by a name that holds no secret yet, unless the pool is open. */
    joinToken: z.string().min(16).max(256).regex(/^[A-Za-z0-9_-]+$/, 'join token must be base64url').optional(),
    /**
     * The node's wallet: its address, where it is paid, and its EIP-712 signature over the coordinator's challenge
     * (protocol/wallet-hello.ts). Absent: the node trains but can be paid nothing.
     */
    wallet: z
      .object({
        address,
        payout: address,
        nonce: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
        expiresAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
        signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/, 'signature must be 65 bytes of hex'),
      })
      .optional(),
  }),
  z.object({
    v: z.literal(1),
    type: z.literal('heartbeat'),
    at: z.number().finite(),
    round: z.number().int().nullable(),
    /** Time computing over wall time over the agent's recent rounds (its own measurement), for the node table. */
    computeShare: z.number().finite().min(0).max(1).optional(),
  }),
  z.object({ v: z.literal(1), type: z.literal('ready'), sessionId: z.number().int().positive() }),
  z.object({ v: z.literal(1), type: z.literal('goodbye'), reason: z.string().max(500) }),
]);
export type AgentMessage = z.infer<typeof agentMessageSchema>;

const reasonText = z.string().max(2000);

/** The coordinator's wallet challenge, sent as soon as a connection opens (protocol/wallet-hello.ts). */
export const walletChallengeSchema = z.object({
  coordinator: z.string().min(1).max(128),
  connection: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  nonce: z.string().regex(/^0x[0-9a-fA-F]{64}$/).transform((v) => v as `0x${string}`),
  expiresAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  chainId: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  verifyingContract: address.transform((v) => v as `0x${string}`).nullable(),
});

/** Coordinator -> agent. */
export const coordinatorMessageSchema = z.discriminatedUnion('type', [
  z.object({
    v: z.literal(1),
    type: z.literal('welcome'),
    nodeId: u32,
    heartbeatMs: z.number().int().positive(),
    session: sessionDescriptorSchema.nullable(),
    /** Sent once, at a name's first registration: the agent keeps it and presents it from then on. */
    token: z.string().min(16).max(256).optional(),
  }),
  z.object({ v: z.literal(1), type: z.literal('challenge'), challenge: walletChallengeSchema }),
  z.object({ v: z.literal(1), type: z.literal('session'), session: sessionDescriptorSchema.nullable() }),
  z.object({ v: z.literal(1), type: z.literal('assignment'), assignment: assignmentSchema }),
  z.object({ v: z.literal(1), type: z.literal('cancel'), round: u32, reason: reasonText }),
  z.object({
    v: z.literal(1),
    type: z.literal('accepted'),
    round: u32,
    samples: u32,
    /** The update's norm was over the coordinator's relative limit: it counts as if it were this long (its samples are credited as usual). */
    clippedTo: z.number().positive().finite().optional(),
  }),
  z.object({ v: z.literal(1), type: z.literal('rejected'), round: u32, code: z.string().max(64), reason: reasonText }),
  z.object({ v: z.literal(1), type: z.literal('error'), code: z.string().max(64), message: reasonText }),
]);
export type CoordinatorMessage = z.infer<typeof coordinatorMessageSchema>;

export type ParseResult<T> = { ok: true; message: T } | { ok: false; code: 'BAD_MESSAGE' | 'PROTOCOL_VERSION'; reason: string };

/** Parses one text frame: JSON, then the protocol version, then the schema. Never throws. */
export function parseMessage<T>(schema: z.ZodType<T>, text: string): ParseResult<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, code: 'BAD_MESSAGE', reason: 'text frame is not JSON' };
  }
  if (typeof parsed === 'object' && parsed !== null && 'v' in parsed && parsed.v !== AGENT_PROTOCOL_VERSION) {
    return {
      ok: false,
      code: 'PROTOCOL_VERSION',
      reason: `peer speaks protocol ${String(parsed.v)}, this side speaks ${AGENT_PROTOCOL_VERSION}: upgrade the older one`,
    };
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    return { ok: false, code: 'BAD_MESSAGE', reason: result.error.issues.map((i) => `${i.path.join('.') || 'message'}: ${i.message}`).join('; ') };
  }
  return { ok: true, message: result.data };
}

/** WebSocket close codes (4000-4999 is the application range). The error table maps error codes onto them. */
export const CLOSE_CODES = {
  protocolError: 4002,
  replaced: 4003,
  heartbeatTimeout: 4004,
  shuttingDown: 4005,
  nameTaken: 4006,
  flood: 4008,
  /** Too many rejected updates: the node is refused for a while (the close reason says until when). */
  banned: 4009,
  /** No join token, or one that is unknown, revoked, expired or bound to another name. */
  unauthorized: 4010,
  /** The agent did not read what it was sent: its send buffer passed the bound. */
  slowReader: 4011,
  /** No hello within the hello timeout after the connection opened. */
  helloTimeout: 4012,
  /** The wallet signature in the hello is not valid, or the name is bound to another wallet. */
  walletRefused: 4013,
} as const;
