// One node's work in a session (the current one by default, else the latest): every contribution with its
// round trip and throughput, rejections by reason, and its failures. The last `rounds` rounds (default 500).
import { z } from 'zod';
import { nodeActivity as activityOf } from '../../../core/console-views';
import { nodeActivity } from '../../dto';
import { positiveId } from '../../inputs';
import { requireNode } from '../../node-lookup';
import { defineQuery } from '../../procedure';

export const activity = defineQuery({
  input: z.object({
    id: z.union([positiveId, z.string().min(1).max(64)]),
    sessionId: positiveId.optional(),
    rounds: z.number().int().min(1).max(10_000).optional(),
  }),
  output: nodeActivity,
  rest: { method: 'GET', path: '/api/nodes/:id/activity', query: ['sessionId', 'rounds'] },
  resolve: async ({ ctx, input }) => {
    const node = requireNode(ctx.control, input.id);
    const sessionId = input.sessionId ?? ctx.control.status().sessionId ?? (await ctx.control.sessions(1))[0]?.id ?? null;
    const session = sessionId === null ? null : await ctx.control.session(sessionId);
    if (!session) return { node, ...activityOf(node.id, null, [], [], []) };
    const range = { afterRound: Math.max(0, session.round - (input.rounds ?? 500)), rounds: input.rounds ?? 500 };
    const [rounds, contributions, events] = await Promise.all([
      ctx.control.rounds(session.id, range),
      ctx.control.contributions(session.id, range),
      ctx.control.sessionEvents(session.id),
    ]);
    return { node, ...activityOf(node.id, session.id, rounds, contributions, events) };
  },
});
