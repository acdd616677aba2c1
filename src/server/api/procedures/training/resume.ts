// Resumes the paused session; CONFLICT when none is paused.
import { sessionSnapshot } from '../../dto';
import { defineMutation } from '../../procedure';

export const resume = defineMutation({
  input: null,
  output: sessionSnapshot,
  rest: { method: 'POST', path: '/api/training/resume' },
  resolve: ({ ctx }) => ctx.control.resume(),
});
