// Every update of a session, applied or rejected, with the shard behind it: what nodes are credited for.
import { z } from 'zod';
import { contributionRecord } from '../../dto';
import { sessionIdInput } from '../../inputs';
import { requireSession } from '../../lookups';
import { defineQuery } from '../../procedure';

export const contributions = defineQuery({
  input: sessionIdInput,
  output: z.array(contributionRecord),
  rest: { method: 'GET', path: '/api/sessions/:sessionId/contributions', envelope: 'contributions' },
  resolve: async ({ ctx, input }) => {
    await requireSession(ctx.control, input.sessionId);
    return ctx.control.contributions(input.sessionId);
  },
});
