// Pauses the running session after the round in flight; CONFLICT when no session runs.
import { sessionSnapshot } from '../../dto';
import { defineMutation } from '../../procedure';

export const pause = defineMutation({
  input: null,
  output: sessionSnapshot,
  rest: { method: 'POST', path: '/api/training/pause' },
  resolve: ({ ctx }) => ctx.control.pause(),
});
