// The rounds of a session, oldest first: applied or not, updates, samples and the data cursor after each.
import { z } from 'zod';
import { roundSummary } from '../../dto';
import { sessionIdInput } from '../../inputs';
import { requireSession } from '../../lookups';
import { defineQuery } from '../../procedure';

export const rounds = defineQuery({
  input: sessionIdInput,
  output: z.array(roundSummary),
  rest: { method: 'GET', path: '/api/sessions/:sessionId/rounds', envelope: 'rounds' },
  resolve: async ({ ctx, input }) => {
    await requireSession(ctx.control, input.sessionId);
    return ctx.control.rounds(input.sessionId);
  },
});
