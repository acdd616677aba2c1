// Starts a session with the given configuration (defaults for what is left out); CONFLICT while one is active.
import { sessionSnapshot } from '../../dto';
import { startTrainingInput } from '../../inputs';
import { defineMutation } from '../../procedure';
import { toSessionConfigInput } from '../../session-config-input';

export const start = defineMutation({
  input: startTrainingInput.optional(),
  output: sessionSnapshot,
  rest: { method: 'POST', path: '/api/training/start', status: 201, body: true },
  resolve: ({ ctx, input }) => ctx.control.start(toSessionConfigInput(input ?? {})),
});
