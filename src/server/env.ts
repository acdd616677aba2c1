// Typed configuration: the only reader of process.env. Empty strings count as missing.
import { z } from 'zod';

const emptyToUndefined = (v: unknown) => (v === '' ? undefined : v);

const schema = z.object({
  PORT: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).max(65535).default(3000)),
  HOST: z.preprocess(emptyToUndefined, z.string().default('0.0.0.0')),
  HYPERGPU_DATA_DIR: z.preprocess(emptyToUndefined, z.string().default('data')),
  HYPERGPU_NODES: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).max(256).default(4)),
  HYPERGPU_HEARTBEAT_MS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(20).max(60_000).default(200)),
  HYPERGPU_HEARTBEAT_TIMEOUT_MS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(100).max(600_000).default(800)),
  HYPERGPU_AGGREGATOR_WORKERS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(1).max(64).optional()),
  HYPERGPU_KEEP_CHECKPOINTS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(1).max(1000).default(3)),
  HYPERGPU_MAX_FRAME_MB: z.preprocess(emptyToUndefined, z.coerce.number().min(1).max(2048).default(256)),
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
