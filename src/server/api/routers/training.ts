import { publicProcedure, router } from '../trpc';
import { idInput, sessionIdInput, startTrainingInput } from '../schemas';
import { toSessionConfigInput } from '../session-config-input';
import { z } from 'zod';
import { RequestError } from '../../../protocol/errors';

export const trainingRouter = router({
  status: publicProcedure.query(({ ctx }) => ctx.control.status()),
  metrics: publicProcedure
    .input(sessionIdInput.extend({ limit: z.number().int().min(1).max(100_000).optional() }).optional())
    .query(({ ctx, input }) => ctx.control.metrics(input?.sessionId, input?.limit)),
  sessions: publicProcedure
    .input(z.object({ limit: z.number().int().min(1).max(1000).default(50) }).optional())
    .query(({ ctx, input }) => ctx.control.sessions(input?.limit ?? 50)),
  session: publicProcedure.input(idInput).query(async ({ ctx, input }) => {
    const session = await ctx.control.session(input.id);
    if (!session) throw new RequestError('NOT_FOUND', `session ${input.id} does not exist`);
    return session;
  }),
  rounds: publicProcedure.input(z.object({ sessionId: z.number().int().positive() })).query(({ ctx, input }) => ctx.control.rounds(input.sessionId)),
  checkpoints: publicProcedure
    .input(z.object({ sessionId: z.number().int().positive() }))
    .query(({ ctx, input }) => ctx.control.checkpoints(input.sessionId)),
  events: publicProcedure
    .input(z.object({ sessionId: z.number().int().positive() }))
    .query(({ ctx, input }) => ctx.control.sessionEvents(input.sessionId)),
  ledger: publicProcedure.input(z.object({ sessionId: z.number().int().positive() })).query(({ ctx, input }) => ctx.control.ledger(input.sessionId)),
  start: publicProcedure.input(startTrainingInput.optional()).mutation(({ ctx, input }) => ctx.control.start(toSessionConfigInput(input ?? {}))),
  pause: publicProcedure.mutation(({ ctx }) => ctx.control.pause()),
  resume: publicProcedure.mutation(({ ctx }) => ctx.control.resume()),
  stop: publicProcedure.mutation(({ ctx }) => ctx.control.stop()),
});
