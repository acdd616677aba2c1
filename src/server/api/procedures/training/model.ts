// Which model the coordinator holds right now: session, model version and a checksum of its parameters (the
// frame codec's checksum32 over the float32 bits). Read-only and cheap (one pass over the parameters), so a
// test or an operator can record version -> checksum while training and compare after a crash and restart.
import { z } from 'zod';
import { defineQuery } from '../../procedure';

export const modelIdentity = z.object({
  /** null when no session's model is loaded. */
  sessionId: z.number().int().positive().nullable(),
  modelVersion: z.number().int().nonnegative(),
  paramCount: z.number().int().nonnegative(),
  /** checksum32 of the parameters' bits (u32); null when no model is loaded. */
  checksum: z.number().int().nonnegative().max(0xffff_ffff).nullable(),
});

export const model = defineQuery({
  input: null,
  output: modelIdentity,
  rest: { method: 'GET', path: '/api/model' },
  access: 'public',
  resolve: ({ ctx }) => ctx.control.modelIdentity(),
});
