// Per-round arrivals: when each node's update came relative to the straggler cut-off and the deadline, which
// were late or rejected, and how long the round took (see core/console-views.ts for how cut-offs are derived).
// The last `rounds` rounds (default 50) unless `afterRound` says where to start.
import { z } from 'zod';
import { roundTimeline } from '../../../core/console-views';
import { roundTimelineEntry } from '../../dto';
import { positiveId } from '../../inputs';
import { requireSession } from '../../lookups';
import { defineQuery } from '../../procedure';

export const roundTimelineProcedure = defineQuery({
  input: z.object({ sessionId: positiveId, afterRound: z.number().int().min(0).optional(), rounds: z.number().int().min(1).max(1000).optional() }),
  output: z.array(roundTimelineEntry),
  rest: { method: 'GET', path: '/api/sessions/:sessionId/round-timeline', query: ['afterRound', 'rounds'], envelope: 'rounds' },
  resolve: async ({ ctx, input }) => {
    const session = await requireSession(ctx.control, input.sessionId);
    const count = input.rounds ?? 50;
    const range = { afterRound: input.afterRound ?? Math.max(0, session.round - count), rounds: count };
    const [rounds, contributions] = await Promise.all([ctx.control.rounds(session.id, range), ctx.control.contributions(session.id, range)]);
    return roundTimeline(rounds, contributions, session.config.roundTimeoutMs);
  },
});
