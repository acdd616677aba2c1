// One node by id or by name (what the node table shows); NOT_FOUND for one this coordinator does not know.
import { nodeSnapshot } from '../../dto';
import { nodeKeyInput } from '../../inputs';
import { requireNode } from '../../node-lookup';
import { defineQuery } from '../../procedure';

export const byId = defineQuery({
  input: nodeKeyInput,
  output: nodeSnapshot,
  rest: { method: 'GET', path: '/api/nodes/:id' },
  resolve: ({ ctx, input }) => requireNode(ctx.control, input.id),
});
