// One session by id: state, configuration and progress.
import { sessionSnapshot } from '../../dto';
import { idInput } from '../../inputs';
import { requireSession } from '../../lookups';
import { defineQuery } from '../../procedure';

export const session = defineQuery({
  input: idInput,
  output: sessionSnapshot,
  rest: { method: 'GET', path: '/api/sessions/:id' },
  resolve: ({ ctx, input }) => requireSession(ctx.control, input.id),
});
