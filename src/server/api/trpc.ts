// The one tRPC init, and the adapter that turns procedure definitions (procedure.ts) into tRPC procedures.
// Coded domain errors become tRPC errors here, through the error table and nothing else.
import {
  initTRPC,
  TRPCError,
  type TRPC_ERROR_CODE_KEY,
  type TRPCMutationProcedure,
  type TRPCQueryProcedure,
  type TRPCSubscriptionProcedure,
} from '@trpc/server';
import type { z } from 'zod';
import { HyperGpuError } from '../../protocol/errors';
import { trpcCodeFor, type TrpcErrorCode } from '../core/error-table';
import {
  isDefinition,
  type ApiContext,
  type MutationDefinition,
  type ProcedureDefinition,
  type ProcedureTree,
  type QueryDefinition,
  type SubscriptionDefinition,
} from './procedure';

export type { ApiContext } from './procedure';

const t = initTRPC.context<ApiContext>().create({
  errorFormatter({ shape, error }) {
    const cause = error.cause;
    return {
      ...shape,
      data: { ...shape.data, domainCode: cause instanceof HyperGpuError ? cause.code : null },
    };
  },
});

/** The table may only name codes tRPC has: this line stops compiling if it names one tRPC lacks. */
const tableCodesAreTrpcCodes: (code: TrpcErrorCode) => TRPC_ERROR_CODE_KEY = (code) => code;
void tableCodesAreTrpcCodes;

const translateErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof HyperGpuError) {
    const cause = result.error.cause;
    throw new TRPCError({ code: trpcCodeFor(cause.code), message: cause.message, cause });
  }
  return result;
});

export const router = t.router;
export const publicProcedure = t.procedure.use(translateErrors);
export const createCallerFactory = t.createCallerFactory;

type Root = (typeof t)['_config']['$types'];
type TrpcInput<I> = I extends z.ZodType ? z.input<I> : void;
type Types<I, Output> = { input: TrpcInput<I>; output: Output; meta: Root['meta']; errorShape: Root['errorShape'] };

/** The tRPC procedure type of a definition: input and output types come from its schemas. */
export type TrpcProcedureOf<D> =
  D extends QueryDefinition<infer I, infer O>
    ? TRPCQueryProcedure<Types<I, z.output<O>>>
    : D extends MutationDefinition<infer I, infer O>
      ? TRPCMutationProcedure<Types<I, z.output<O>>>
      : D extends SubscriptionDefinition<infer I, infer O>
        ? TRPCSubscriptionProcedure<Types<I, AsyncIterable<z.output<O>, void, any>>>
        : never;

export type TrpcRecordOf<T> = { [K in keyof T]: T[K] extends ProcedureDefinition ? TrpcProcedureOf<T[K]> : TrpcRecordOf<T[K]> };

/**
 * One tRPC procedure from one definition: tRPC checks the input and the output against the definition's
 * schemas. A subscription's messages are checked one by one as they are yielded (tRPC's output check would
 * see the async iterable, not the messages).
 */
export function toTrpcProcedure<D extends ProcedureDefinition>(definition: D): TrpcProcedureOf<D> {
  // The types of the result come from TrpcProcedureOf; inside, one builder type serves every definition.
  const base = definition.input ? (publicProcedure.input(definition.input) as unknown as typeof publicProcedure) : publicProcedure;
  const def = definition as ProcedureDefinition;
  switch (def.kind) {
    case 'query':
      return base.output(def.output).query(({ ctx, input }) => def.resolve({ ctx, input })) as unknown as TrpcProcedureOf<D>;
    case 'mutation':
      return base.output(def.output).mutation(({ ctx, input }) => def.resolve({ ctx, input })) as unknown as TrpcProcedureOf<D>;
    case 'subscription':
      return base.subscription(async function* ({ ctx, input, signal }) {
        for await (const message of def.resolve({ ctx, input, signal })) yield def.output.parse(message);
      }) as unknown as TrpcProcedureOf<D>;
  }
}

/** The tRPC router record of a procedure tree, nested the same way. */
export function toTrpcRecord<T extends ProcedureTree>(tree: T): TrpcRecordOf<T> {
  return Object.fromEntries(
    Object.entries(tree).map(([key, node]) => [key, isDefinition(node) ? toTrpcProcedure(node) : toTrpcRecord(node)]),
  ) as TrpcRecordOf<T>;
}
