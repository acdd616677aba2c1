// Where the coordinator stands: state, session, round, model version and node counts.
import { statusSnapshot } from '../../dto';
import { defineQuery } from '../../procedure';

export const status = defineQuery({
  input: null,
  output: statusSnapshot,
  rest: { method: 'GET', path: '/api/status' },
  resolve: ({ ctx }) => ctx.control.status(),
});
