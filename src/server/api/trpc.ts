// The one tRPC init. Coded domain errors are translated to tRPC codes here and nowhere else.
import { initTRPC, TRPCError } from '@trpc/server';
import { HyperGpuError } from '../../protocol/errors';
import type { TrainingControl } from '../services/training-control';

export interface ApiContext {
  control: TrainingControl;
}

const t = initTRPC.context<ApiContext>().create({
  errorFormatter({ shape, error }) {
    const cause = error.cause;
    return {
      ...shape,
      data: { ...shape.data, domainCode: cause instanceof HyperGpuError ? cause.code : null },
    };
  },
});

const translateErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof HyperGpuError) {
    const cause = result.error.cause;
    const code = cause.code === 'NOT_FOUND' ? 'NOT_FOUND' : cause.code === 'CONFLICT' ? 'CONFLICT' : 'BAD_REQUEST';
    throw new TRPCError({ code, message: cause.message, cause });
  }
  return result;
});

export const router = t.router;
export const publicProcedure = t.procedure.use(translateErrors);
export const createCallerFactory = t.createCallerFactory;
