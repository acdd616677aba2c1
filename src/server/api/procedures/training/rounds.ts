// The rounds of a session, oldest first: applied or not, updates, samples and the data cursor after each. A page
// at a time (?afterRound=&rounds=, at most 10,000 rounds).
import { z } from 'zod';
import { roundSummary } from '../../dto';
import { roundPageInput } from '../../inputs';
import { requireSession } from '../../lookups';
import { defineQuery } from '../../procedure';

export const rounds = defineQuery({
  input: roundPageInput,
  output: z.array(roundSummary),
  rest: { method: 'GET', path: '/api/sessions/:sessionId/rounds', query: ['afterRound', 'rounds'], envelope: 'rounds' },
  resolve: async ({ ctx, input }) => {
    await requireSession(ctx.control, input.sessionId);
    return ctx.control.rounds(input.sessionId, { afterRound: input.afterRound, rounds: input.rounds });
  },
});
