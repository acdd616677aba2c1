// Input and output schemas of the agent-admission procedures (join tokens). Kept apart from dto.ts: these
// describe credentials, and the list must never carry a secret or its hash.
import { z } from 'zod';
import type { JoinTokenRecord } from '../core/ports';
import type { JoinTokens } from '../services/join-tokens';
import { RequestError } from '../../protocol/errors';
import type { ApiContext } from './procedure';

export const joinTokenRecord = z.object({
  id: z.number(),
  label: z.string(),
  nodeName: z.string().nullable(),
  createdAt: z.number(),
  expiresAt: z.number().nullable(),
  revokedAt: z.number().nullable(),
});

export const issueJoinTokenInput = z
  .object({
    label: z
      .string()
      .max(200)
      .regex(/^[^\p{Cc}\p{Cf}]*$/u, 'label must not contain control or formatting characters')
      .optional(),
    /** Bind the token to one node name; absent or null: any name may join with it. */
    nodeName: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'name must be 1-64 letters, digits, dot, dash or underscore')
      .nullable()
      .optional(),
    /** Seconds until it expires (at most a year); absent or null: never (revoke it instead). */
    expiresInSeconds: z.number().int().positive().max(366 * 24 * 3600).nullable().optional(),
  })
  .strict();

export const issuedJoinToken = z.object({
  /** The secret: shown in this answer only; the coordinator keeps its sha256. */
  token: z.string(),
  joinToken: joinTokenRecord,
});

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Expect<T extends true> = T;
export type AgentsDtoMatchesDomain = Expect<Same<z.infer<typeof joinTokenRecord>, JoinTokenRecord>>;

/** The join-token service of this server; a server built without one (a unit test's) says so. */
export function joinTokensOf(ctx: ApiContext): JoinTokens {
  if (!ctx.joinTokens) throw new RequestError('NOT_FOUND', 'this server does not manage join tokens');
  return ctx.joinTokens;
}
