// Sessions, newest first.
import { z } from 'zod';
import { sessionSnapshot } from '../../dto';
import { defineQuery } from '../../procedure';

const DEFAULT_LIMIT = 100;

export const sessions = defineQuery({
  input: z.object({ limit: z.number().int().min(1).max(1000).optional() }).optional(),
  output: z.array(sessionSnapshot),
  rest: { method: 'GET', path: '/api/sessions', query: ['limit'], envelope: 'sessions' },
  resolve: ({ ctx, input }) => ctx.control.sessions(input?.limit ?? DEFAULT_LIMIT),
});
