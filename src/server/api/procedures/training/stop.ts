// Stops the active session for good; CONFLICT when there is none.
import { sessionSnapshot } from '../../dto';
import { defineMutation } from '../../procedure';

export const stop = defineMutation({
  input: null,
  output: sessionSnapshot,
  rest: { method: 'POST', path: '/api/training/stop' },
  resolve: ({ ctx }) => ctx.control.stop(),
});
