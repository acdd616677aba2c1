// What one API procedure is, independent of the transport: its input schema (or none), its output schema, how
// it resolves against the coordinator, and, where the original REST design has a path for it, that binding.
// The tRPC router (root.ts) and the REST facade (rest.ts) are both built from these definitions, so a procedure
// validates the same input, returns the same output and fails the same way on every transport.
import type { z } from 'zod';
import type { Caller } from '../core/operator-access';
import type { HealthRegistry } from '../services/health';
import type { JoinTokens } from '../services/join-tokens';
import type { NodeTimelines } from '../services/node-timelines';
import type { RewardsService } from '../services/rewards';
import type { TrainingControl } from '../services/training-control';

export interface ApiContext {
  control: TrainingControl;
  /** When this server started (epoch ms), for /health; the coordinator's own start time when absent. */
  startedAt?: number;
  /**
   * Who is calling, decided at each call rather than once per connection: a tRPC WebSocket lives on after its
   * sign-in session expires or is signed out, and must not keep the rights it had.
   */
  caller: () => Caller;
  /** HYPERGPU_PRIVATE_READS: every procedure, reads included, needs the operator credential. */
  privateReads?: boolean;
  /**
   * Live subscriptions on this connection and how many it may hold (tRPC over WebSocket has one context per
   * socket); absent over HTTP, which serves no subscriptions.
   */
  subscriptions?: { live: number; max: number };
  /** Agent admission (join tokens); absent on a server built without it. */
  joinTokens?: JoinTokens;
  /** What the operator can do at the agent gateway; absent on a server built without one. */
  operations?: { banAddress(address: string, untilMs: number, reason: string): number };
  /** Component health (database, workers, evaluator, agent channel, and what others register); absent: liveness only. */
  health?: HealthRegistry;
  /** This coordinator's version (package.json), for /health. */
  version?: string;
  /** Per-node "why did I earn this" timelines; absent on a server built without the audit ledger. */
  timelines?: NodeTimelines;
  /** Rewards and settlement reads; absent on a server built without them. */
  rewards?: RewardsService;
}

export type ProcedureKind = 'query' | 'mutation' | 'subscription';

export interface RestBinding {
  method: 'GET' | 'POST';
  /** Path pattern; a `:name` segment is a path parameter that becomes the input field `name`. */
  path: `/${string}`;
  /** Status of a successful answer (default 200). */
  status?: 200 | 201;
  /** Query parameters that become input fields of the same name. */
  query?: readonly string[];
  /** The JSON body is the input (absent or empty: undefined). */
  body?: true;
  /**
   * The body is `{ [envelope]: output }` instead of the output itself: the original design answers lists as
   * objects (`{ "nodes": [...] }`), so a script can tell an empty list from an error at a glance.
   */
  envelope?: string;
  /** An answer this says is unhealthy goes out with 503 (the same body): /health. */
  unhealthy?: (output: unknown) => boolean;
  /** The output is bytes (a Uint8Array), answered with this content type instead of JSON. */
  contentType?: 'application/octet-stream';
}

/** The input a resolver receives: the parsed input, or undefined for a procedure without one. */
export type InputOf<I extends z.ZodType | null> = I extends z.ZodType ? z.output<I> : undefined;

interface Definition<K extends ProcedureKind, I extends z.ZodType | null, O extends z.ZodType> {
  kind: K;
  /** Input schema; null for a procedure that takes no input. */
  input: I;
  /** Output schema: every answer is checked against it (for a subscription: every message it yields). */
  output: O;
  /** The REST path serving this procedure, or null when it has none. */
  rest: RestBinding | null;
  /**
   * Who may call it: 'operator' needs an operator credential (every mutation unless it says otherwise),
   * 'public' anyone (reads, unless the server is configured to keep reads private too).
   */
  access: ProcedureAccess;
}

export type ProcedureAccess = 'public' | 'operator';

export interface QueryDefinition<I extends z.ZodType | null = z.ZodType | null, O extends z.ZodType = z.ZodType>
  extends Definition<'query', I, O> {
  resolve(opts: { ctx: ApiContext; input: InputOf<I> }): z.input<O> | Promise<z.input<O>>;
}

export interface MutationDefinition<I extends z.ZodType | null = z.ZodType | null, O extends z.ZodType = z.ZodType>
  extends Definition<'mutation', I, O> {
  resolve(opts: { ctx: ApiContext; input: InputOf<I> }): z.input<O> | Promise<z.input<O>>;
}

export interface SubscriptionDefinition<I extends z.ZodType | null = z.ZodType | null, O extends z.ZodType = z.ZodType>
  extends Definition<'subscription', I, O> {
  resolve(opts: { ctx: ApiContext; input: InputOf<I>; signal: AbortSignal | undefined }): AsyncIterable<z.input<O>>;
}

export type ProcedureDefinition = QueryDefinition<any, any> | MutationDefinition<any, any> | SubscriptionDefinition<any, any>;

type Spec<D> = Omit<D, 'kind' | 'rest' | 'access'> & { rest?: RestBinding; access?: ProcedureAccess };

export function defineQuery<I extends z.ZodType | null, O extends z.ZodType>(spec: Spec<QueryDefinition<I, O>>): QueryDefinition<I, O> {
  return { kind: 'query', ...spec, rest: spec.rest ?? null, access: spec.access ?? 'public' };
}

export function defineMutation<I extends z.ZodType | null, O extends z.ZodType>(spec: Spec<MutationDefinition<I, O>>): MutationDefinition<I, O> {
  return { kind: 'mutation', ...spec, rest: spec.rest ?? null, access: spec.access ?? 'operator' };
}

export function defineSubscription<I extends z.ZodType | null, O extends z.ZodType>(
  spec: Spec<SubscriptionDefinition<I, O>>,
): SubscriptionDefinition<I, O> {
  return { kind: 'subscription', ...spec, rest: spec.rest ?? null, access: spec.access ?? 'public' };
}

/** Procedures grouped by domain; the nesting is the tRPC path (`training.status`). */
export type ProcedureTree = { [key: string]: ProcedureDefinition | ProcedureTree };

export function isDefinition(node: ProcedureDefinition | ProcedureTree): node is ProcedureDefinition {
  return typeof (node as ProcedureDefinition).resolve === 'function' && typeof (node as ProcedureDefinition).kind === 'string';
}

/**
 * The procedure's answer, checked against its output schema (fields the schema does not declare are dropped).
 * A mismatch is a bug on this side: both transports answer it as an internal error naming the procedure.
 */
export function checkOutput<O extends z.ZodType>(procedure: string, schema: O, value: unknown): z.output<O> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => `${issue.path.join('.') || 'output'}: ${issue.message}`).join('; ');
  throw new Error(`${procedure} produced output that does not match its schema: ${issues}`);
}
