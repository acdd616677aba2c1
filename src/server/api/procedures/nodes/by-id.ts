// One node by id; NOT_FOUND for an id this coordinator does not know.
import { RequestError } from '../../../../protocol/errors';
import { nodeSnapshot } from '../../dto';
import { idInput } from '../../inputs';
import { defineQuery } from '../../procedure';

export const byId = defineQuery({
  input: idInput,
  output: nodeSnapshot,
  rest: { method: 'GET', path: '/api/nodes/:id' },
  resolve: ({ ctx, input }) => {
    const node = ctx.control.node(input.id);
    if (!node) throw new RequestError('NOT_FOUND', `node ${input.id} is not known to this coordinator`);
    return node;
  },
});
