// "Why did I earn this": one node's rounds and epochs (delivered, accepted, late, rejected with the reason,
// audited, credited, forfeited; settled and claimed once the chain settles). By numeric id or by name;
// NOT_FOUND for a node never registered.
import { z } from 'zod';
import { RequestError } from '../../../../protocol/errors';
import { positiveId } from '../../inputs';
import { defineQuery } from '../../procedure';
import { nodeTimeline } from '../../timeline-dto';

export const contributionTimeline = defineQuery({
  // Node names are at most 64 characters (the hello's schema); 128 leaves room and bounds the lookup.
  input: z.object({ id: z.union([positiveId, z.string().min(1).max(128)]) }),
  output: nodeTimeline,
  rest: { method: 'GET', path: '/api/nodes/:id/timeline' },
  resolve: async ({ ctx, input }) => {
    if (!ctx.timelines) throw new RequestError('NOT_FOUND', 'this server keeps no node timelines');
    const key = typeof input.id === 'string' && /^[1-9][0-9]{0,9}$/.test(input.id) ? Number(input.id) : input.id;
    const timeline = await ctx.timelines.timeline(key);
    if (!timeline) throw new RequestError('NOT_FOUND', `node ${String(input.id)} is not known to this coordinator`);
    return timeline;
  },
});
