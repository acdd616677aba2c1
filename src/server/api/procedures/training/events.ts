// The durable timeline of a session (joins, failures, restarts, rounds not applied), oldest first.
import { z } from 'zod';
import { sessionEvent } from '../../dto';
import { sessionIdInput } from '../../inputs';
import { requireSession } from '../../lookups';
import { defineQuery } from '../../procedure';

export const events = defineQuery({
  input: sessionIdInput,
  output: z.array(sessionEvent),
  rest: { method: 'GET', path: '/api/sessions/:sessionId/events', envelope: 'events' },
  resolve: async ({ ctx, input }) => {
    await requireSession(ctx.control, input.sessionId);
    return ctx.control.sessionEvents(input.sessionId);
  },
});
