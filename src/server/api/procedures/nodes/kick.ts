// The operator kicks a node (by id or name): disconnected at once, no further work and so no further credit in
// this session (it may reconnect; it stays unready until the next session). An update it delivered before the
// kick stays in its round (it already counts toward it: removing it would break the round's accounting).
// With banSeconds, its name is also refused at hello for that long. Returns the node as it is after the kick.
import { nodeSnapshot } from '../../dto';
import { kickInput } from '../../inputs';
import { requireNode } from '../../node-lookup';
import { defineMutation } from '../../procedure';

export const kick = defineMutation({
  input: kickInput,
  output: nodeSnapshot,
  rest: { method: 'POST', path: '/api/nodes/:id/kick', body: true },
  resolve: async ({ ctx, input }) => {
    const node = requireNode(ctx.control, input.id);
    await ctx.control.kick(node.id, { banSeconds: input.banSeconds ?? null, reason: input.reason ?? 'no reason given' });
    return ctx.control.node(node.id) ?? node;
  },
});
