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
import { ZodError, type z } from 'zod';
import { HyperGpuError } from '../../protocol/errors';
import { trpcCodeFor, type TrpcErrorCode } from '../core/error-table';
import { checkAccess } from '../core/operator-access';
import {
  checkOutput,
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
    // Invalid input: each issue with its field path, so a form can show the reason next to the field.
    const issues = cause instanceof ZodError ? cause.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message })) : null;
    return {
      ...shape,
      data: { ...shape.data, domainCode: cause instanceof HyperGpuError ? cause.code : null, issues },
    };
  },
});

/** The table may only name codes tRPC has: this line stops compiling if it names one tRPC lacks. */
const tableCodesAreTrpcCodes: (code: TrpcErrorCode) => TRPC_ERROR_CODE_KEY = (code) => code;
void tableCodesAreTrpcCodes;

/** A coded domain error becomes the tRPC error the error table names for its code; anything else is left to tRPC. */
function toTrpcError(error: unknown): unknown {
  return error instanceof HyperGpuError ? new TRPCError({ code: trpcCodeFor(error.code), message: error.message, cause: error }) : error;
}

export const router = t.router;
/**
 * Every procedure's base. Errors are translated and outputs checked inside each resolver (toTrpcProcedure), not
 * in middlewares: each tRPC middleware costs about 7 µs a call here, as much as a whole REST status request's
 * share of the handler.
 */
export const publicProcedure = t.procedure;
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
 * tRPC runs a zod schema through its parseAsync, which skips zod's compiled fast path (a status snapshot took
 * 13 µs instead of 1). Handed a plain function instead, tRPC calls it as is; a failure is still BAD_REQUEST.
 */
const parseWith = (schema: z.ZodType) => (value: unknown) => schema.parse(value);

/**
 * One tRPC procedure from one definition: tRPC checks the input against the definition's input schema; the
 * resolver checks the output (each message, for a subscription) and translates coded errors.
 */
export function toTrpcProcedure<D extends ProcedureDefinition>(path: string, definition: D): TrpcProcedureOf<D> {
  // The types of the result come from TrpcProcedureOf; inside, one builder type serves every definition.
  const base = definition.input ? (publicProcedure.input(parseWith(definition.input)) as unknown as typeof publicProcedure) : publicProcedure;
  const def = definition as ProcedureDefinition;
  const resolve = async (opts: { ctx: ApiContext; input: unknown }) => {
    try {
      checkAccess(path, def.access, opts.ctx.caller(), opts.ctx.privateReads ?? false);
      return checkOutput(path, def.output, await (def as QueryDefinition | MutationDefinition).resolve(opts));
    } catch (error) {
      throw toTrpcError(error);
    }
  };
  switch (def.kind) {
    case 'query':
      return base.query(resolve) as unknown as TrpcProcedureOf<D>;
    case 'mutation':
      return base.mutation(resolve) as unknown as TrpcProcedureOf<D>;
    case 'subscription':
      return base.subscription(async function* ({ ctx, input, signal }) {
        const slots = ctx.subscriptions;
        let holding = false;
        try {
          checkAccess(path, def.access, ctx.caller(), ctx.privateReads ?? false);
          // Each live subscription holds a listener and a buffer of events: a socket gets a few, not thousands.
          if (slots) {
            if (slots.live >= slots.max) {
              throw new TRPCError({
                code: trpcCodeFor('RATE_LIMITED'),
                message: `${path} refused: this connection already holds ${slots.max} live subscriptions; close one first`,
              });
            }
            slots.live++;
            holding = true;
          }
          for await (const message of def.resolve({ ctx, input, signal })) yield checkOutput(path, def.output, message);
        } catch (error) {
          throw toTrpcError(error);
        } finally {
          if (holding) slots!.live--;
        }
      }) as unknown as TrpcProcedureOf<D>;
  }
}

/** The tRPC router record of a procedure tree, nested the same way. */
export function toTrpcRecord<T extends ProcedureTree>(tree: T, prefix = ''): TrpcRecordOf<T> {
  return Object.fromEntries(
    Object.entries(tree).map(([key, node]) => [key, isDefinition(node) ? toTrpcProcedure(`${prefix}${key}`, node) : toTrpcRecord(node, `${prefix}${key}.`)]),
  ) as TrpcRecordOf<T>;
}
