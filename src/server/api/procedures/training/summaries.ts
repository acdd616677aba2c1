// Past sessions for the console's list: each session with its outcome, duration, samples and best test accuracy
// (the best of its evaluations, which the session row does not keep). Newest first, at most `limit` (default 50).
import { z } from 'zod';
import { sessionSnapshot } from '../../dto';
import { defineQuery } from '../../procedure';

export const summaries = defineQuery({
  input: z.object({ limit: z.number().int().min(1).max(200).optional() }).optional(),
  output: z.array(z.object({ session: sessionSnapshot, durationMs: z.number(), bestTestAccuracy: z.number().nullable(), evaluations: z.number() })),
  rest: { method: 'GET', path: '/api/sessions/summaries', query: ['limit'], envelope: 'sessions' },
  resolve: async ({ ctx, input }) => {
    const sessions = await ctx.control.sessions(input?.limit ?? 50);
    const now = Date.now();
    return Promise.all(
      sessions.map(async (session) => {
        const { history } = await ctx.control.metrics(session.id, 100_000);
        const accuracies = history.map((m) => m.testAccuracy).filter((a): a is number => a !== null && Number.isFinite(a));
        return {
          session,
          durationMs: (session.endedAt ?? now) - session.startedAt,
          bestTestAccuracy: accuracies.length ? Math.max(...accuracies) : null,
          evaluations: accuracies.length,
        };
      }),
    );
  },
});
