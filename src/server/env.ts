// Typed configuration: the only reader of process.env. Empty strings count as missing.
import { z } from 'zod';

const emptyToUndefined = (v: unknown) => (v === '' ? undefined : v);

const flag = z.preprocess(
  (v) => (v === '' || v === undefined ? undefined : typeof v === 'string' ? ['1', 'true', 'yes', 'on'].includes(v.toLowerCase()) : v),
  z.boolean().default(false),
);
const optionalInt = (min: number, max: number) => z.preprocess(emptyToUndefined, z.coerce.number().int().min(min).max(max).optional());

const schema = z.object({
  PORT: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).max(65535).default(3000)),
  HOST: z.preprocess(emptyToUndefined, z.string().default('0.0.0.0')),
  HYPERGPU_DATA_DIR: z.preprocess(emptyToUndefined, z.string().default('data')),
  HYPERGPU_NODES: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).max(256).default(4)),
  HYPERGPU_HEARTBEAT_MS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(20).max(60_000).default(200)),
  HYPERGPU_HEARTBEAT_TIMEOUT_MS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(100).max(600_000).default(800)),
  HYPERGPU_AGGREGATOR_WORKERS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(1).max(64).optional()),
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
