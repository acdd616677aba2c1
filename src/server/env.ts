// Typed configuration: the only reader of process.env. Empty strings count as missing.
import { z } from 'zod';

const emptyToUndefined = (v: unknown) => (v === '' ? undefined : v);
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

const flag = z.preprocess(
  (v) => (v === '' || v === undefined ? undefined : typeof v === 'string' ? ['1', 'true', 'yes', 'on'].includes(v.toLowerCase()) : v),
  z.boolean().default(false),
);
const optionalInt = (min: number, max: number) => z.preprocess(emptyToUndefined, z.coerce.number().int().min(min).max(max).optional());

const schema = z.object({
  PORT: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).max(65535).default(3000)),
  // Loopback by default: serving other machines (remote agents) is a choice, see "Security" in README.md.
  HOST: z.preprocess(emptyToUndefined, z.string().default('127.0.0.1')),
  /** The admin token; absent: one is generated at first start and stored hashed in the data dir. */
  HYPERGPU_ADMIN_TOKEN: z.preprocess(emptyToUndefined, z.string().min(16, 'use at least 16 characters (openssl rand -hex 32)').optional()),
  /** 1: reads (status, metrics, the live feed) need the operator credential too. */
  HYPERGPU_PRIVATE_READS: z.preprocess(emptyToUndefined, z.enum(['0', '1', 'true', 'false']).default('0').transform((v) => v === '1' || v === 'true')),
  /** Host names this server answers to besides localhost and the bound address, comma-separated. */
  HYPERGPU_PUBLIC_HOSTS: z.preprocess(emptyToUndefined, z.string().default('').transform(list)),
  /** Origins (scheme://host[:port]) whose pages may open WebSockets and POST here, comma-separated. */
  HYPERGPU_ALLOWED_ORIGINS: z.preprocess(emptyToUndefined, z.string().default('').transform(list)),
  HYPERGPU_DATA_DIR: z.preprocess(emptyToUndefined, z.string().default('data')),
  HYPERGPU_NODES: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).max(256).default(4)),
  HYPERGPU_HEARTBEAT_MS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(20).max(60_000).default(200)),
  HYPERGPU_HEARTBEAT_TIMEOUT_MS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(100).max(600_000).default(800)),
  HYPERGPU_AGGREGATOR_WORKERS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(1).max(64).optional()),
  HYPERGPU_KEEP_CHECKPOINTS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(1).max(1000).default(3)),
  /**
   * Probability that an accepted update is audited besides each node's one random update per epoch (see
   * src/server/core/audit.ts for the default 0.05 and why). 0 keeps only the once-per-epoch audits.
   */
  HYPERGPU_AUDIT_RATE: z.preprocess(emptyToUndefined, z.coerce.number().min(0).max(1).optional()),
  /**
   * Audit captures waiting for the auditor: MB held in memory, then MB in scratch files under the data folder
   * (defaults AUDIT_MEMORY_BYTES and AUDIT_SPILL_BYTES in src/server/core/audit.ts, and why). Past both, a chosen
   * update is recorded as not audited. 0 MB of scratch files keeps every capture in memory.
   */
  HYPERGPU_AUDIT_MEMORY_MB: z.preprocess(emptyToUndefined, z.coerce.number().min(0).max(65_536).optional()),
  /**
   * Nice value of the evaluator and auditor threads (src/ml/thread-priority.ts says why and what it measured):
   * work nobody waits for then yields the cores to the event loop and the aggregator. Default 0, the process's
   * priority: 10 measured no better in the API benchmark, and on a box shared with agents (npm start's local
   * agents) audits would fall further behind. For a coordinator-only machine whose cores audits fill. Linux only.
   */
  HYPERGPU_BACKGROUND_NICE: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).max(19).default(0)),
  HYPERGPU_AUDIT_SPILL_MB: z.preprocess(emptyToUndefined, z.coerce.number().min(0).max(16_777_216).optional()),
  /** Datasets this coordinator serves, `name=path,name2=path2` (--dataset name=path adds to them). */
  HYPERGPU_DATASETS: z.preprocess(emptyToUndefined, z.string().optional()),
  /** Largest frame a registered agent may send; default: the largest model frame this coordinator serves. */
  HYPERGPU_MAX_FRAME_MB: z.preprocess(emptyToUndefined, z.coerce.number().min(0.001).max(2048).optional()),
  // Agent admission and gateway limits (README: Security, Agents and limits).
  HYPERGPU_OPEN_POOL: flag,
  HYPERGPU_IDLE_NODE_DAYS: z.preprocess(emptyToUndefined, z.coerce.number().min(0).max(3650).default(7)),
  HYPERGPU_PRE_HELLO_FRAME_KB: optionalInt(1, 1024),
  HYPERGPU_HELLO_TIMEOUT_MS: optionalInt(100, 600_000),
  HYPERGPU_MAX_AGENT_CONNECTIONS: optionalInt(1, 1_000_000),
  HYPERGPU_MAX_AGENT_CONNECTIONS_PER_ADDRESS: optionalInt(1, 1_000_000),
  HYPERGPU_AGENT_BYTES_PER_SECOND: optionalInt(1024, Number.MAX_SAFE_INTEGER),
  HYPERGPU_AGENT_MAX_BUFFERED_MB: z.preprocess(emptyToUndefined, z.coerce.number().min(0.01).max(4096).optional()),
  HYPERGPU_AGENT_OFFENDER_STRIKES: optionalInt(1, 1_000_000),
  HYPERGPU_AGENT_OFFENDER_BAN_S: optionalInt(0, 86_400),
  HYPERGPU_TLS_CERT: z.preprocess(emptyToUndefined, z.string().optional()),
  HYPERGPU_TLS_KEY: z.preprocess(emptyToUndefined, z.string().optional()),
  // Settlement chain (README: Rewards). Default: a local anvil started by the coordinator. With an RPC URL: that
  // network (Monad testnet: https://testnet-rpc.monad.xyz, chain id 10143), attached to HYPERGPU_CONTRACT_ADDRESS or
  // deployed there with HYPERGPU_DEPLOYER_KEY.
  HYPERGPU_CHAIN: z.preprocess(emptyToUndefined, z.enum(['anvil', 'off']).default('anvil')),
  HYPERGPU_CHAIN_RPC_URL: z.preprocess(emptyToUndefined, z.url().optional()),
  HYPERGPU_CHAIN_ID: z.preprocess(emptyToUndefined, z.coerce.number().int().min(1).max(2 ** 53).default(10143)),
  HYPERGPU_DEPLOYER_KEY: z.preprocess(emptyToUndefined, z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'a 0x-prefixed 32-byte hex private key').optional()),
  HYPERGPU_CONTRACT_ADDRESS: z.preprocess(emptyToUndefined, z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'a 0x-prefixed 20-byte address').optional()),
  /** Base units sent to a newly deployed contract (default: 1,000 tokens on the local chain, 0 elsewhere). */
  HYPERGPU_CHAIN_FUND: z.preprocess(emptyToUndefined, z.string().regex(/^\d{1,78}$/).optional()),
  /** Default reward policy: base units per accepted sample, and per epoch at most (both decimal strings). */
  HYPERGPU_REWARD_PER_SAMPLE: z.preprocess(emptyToUndefined, z.string().regex(/^\d{1,40}$/).optional()),
  HYPERGPU_EPOCH_BUDGET: z.preprocess(emptyToUndefined, z.string().regex(/^(\d{1,40}|none)$/).optional()),
  NODE_ENV: z.preprocess(emptyToUndefined, z.enum(['development', 'production', 'test']).optional()),
});

export type ServerEnv = z.infer<typeof schema>;

export function readEnv(source: NodeJS.ProcessEnv = process.env): ServerEnv {
  const parsed = schema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new Error(`invalid environment:\n${lines}`);
  }
  return parsed.data;
}
