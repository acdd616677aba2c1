// The updates of a session, applied or rejected, with the shard behind each: what nodes are credited for. A page
// of rounds at a time (?afterRound=&rounds=), so a long session never answers megabytes in one go.
import { z } from 'zod';
import { contributionRecord } from '../../dto';
import { roundPageInput } from '../../inputs';
import { requireSession } from '../../lookups';
import { defineQuery } from '../../procedure';

export const contributions = defineQuery({
  input: roundPageInput,
  output: z.array(contributionRecord),
  rest: { method: 'GET', path: '/api/sessions/:sessionId/contributions', query: ['afterRound', 'rounds'], envelope: 'contributions' },
  resolve: async ({ ctx, input }) => {
    await requireSession(ctx.control, input.sessionId);
    return ctx.control.contributions(input.sessionId, { afterRound: input.afterRound, rounds: input.rounds });
  },
});
