import { publicProcedure, router } from '../trpc';
import { idInput } from '../schemas';
import { RequestError } from '../../../protocol/errors';

export const nodesRouter = router({
  list: publicProcedure.query(({ ctx }) => ctx.control.nodes()),
  byId: publicProcedure.input(idInput).query(({ ctx, input }) => {
    const node = ctx.control.node(input.id);
    if (!node) throw new RequestError('NOT_FOUND', `node ${input.id} is not known to this coordinator`);
    return node;
  }),
});
