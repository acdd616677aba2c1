// The checkpoints written for a session: round, model version, file and its sha256.
import { z } from 'zod';
import { checkpointRecord } from '../../dto';
import { sessionIdInput } from '../../inputs';
import { requireSession } from '../../lookups';
import { defineQuery } from '../../procedure';

export const checkpoints = defineQuery({
  input: sessionIdInput,
  output: z.array(checkpointRecord),
  rest: { method: 'GET', path: '/api/sessions/:sessionId/checkpoints', envelope: 'checkpoints' },
  resolve: async ({ ctx, input }) => {
    await requireSession(ctx.control, input.sessionId);
    return ctx.control.checkpoints(input.sessionId);
  },
});
