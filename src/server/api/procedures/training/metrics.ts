// The metric history of a session (the current one by default) and its headline figures. The history grows by
// one point a round: callers get the last `limit` points (default 1000), or those after round `since`, instead
// of megabytes on every poll.
import { z } from 'zod';
import { metricsReport } from '../../dto';
import { positiveId } from '../../inputs';
import { defineQuery } from '../../procedure';

const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 100_000;

export const metrics = defineQuery({
  input: z
    .object({
      sessionId: positiveId.optional(),
      limit: z.number().int().min(1).max(MAX_LIMIT).optional(),
      since: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    })
    .optional(),
  output: metricsReport,
  rest: { method: 'GET', path: '/api/metrics', query: ['sessionId', 'limit', 'since'] },
  resolve: async ({ ctx, input }) => {
    const limit = input?.limit ?? DEFAULT_LIMIT;
    const since = input?.since;
    const { latest, history: all } = await ctx.control.metrics(input?.sessionId, since === undefined ? limit : MAX_LIMIT);
    const history = since === undefined ? all : all.filter((m) => m.round > since).slice(0, limit);
    const lastEval = all.findLast((m) => m.testAccuracy !== null) ?? null;
    return {
      sessionId: input?.sessionId ?? ctx.control.status().sessionId,
      round: latest?.round ?? 0,
      loss: latest?.trainLoss ?? null,
      accuracy: lastEval?.testAccuracy ?? null,
      testLoss: lastEval?.testLoss ?? null,
      samples: latest?.totalSamples ?? 0,
      samplesPerSecond: latest?.samplesPerSecond ?? 0,
      latest,
      history,
    };
  },
});
