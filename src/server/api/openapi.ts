// The OpenAPI 3.1 document of the REST facade, generated from the same procedure definitions and zod schemas the
// facade validates with (rest.ts serves it at GET /api/openapi.json): nothing here is written by hand but the
// envelope of the document and which error statuses a route can answer. A procedure that gains a REST binding,
// a field or a query parameter appears in the document without an edit here.
//
// Schemas JSON Schema cannot express are handled on purpose, not dropped:
//  - measurements (dto.ts) accept NaN and ±Infinity; JSON writes those as null, so on the wire a measurement is
//    `number | null` and that is what the document says (z.nan() and the Infinity literal become {type:'null'});
//  - anything else zod cannot express (a transform's output, a custom check) becomes {} ("any value") rather than
//    failing the start: the response is still checked by the zod schema on every answer.
import { z } from 'zod';
import type { RestRoute } from './rest';

type JsonSchema = Record<string, unknown>;

const ERROR_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
  },
};

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input: the message names the field and the reason the input schema gives',
  401: 'No operator credential',
  403: 'A credential that is not the operator’s',
  404: 'Unknown id',
  409: 'The session’s state does not allow it',
};

interface ZodInternals {
  _zod: { def: { type: string; values?: unknown[] } };
}

/** Deliberate translation of what JSON Schema cannot say (see the header). */
function override(ctx: { zodSchema: unknown; jsonSchema: JsonSchema }): void {
  const def = (ctx.zodSchema as ZodInternals)._zod.def;
  const nonFiniteLiteral = def.type === 'literal' && def.values?.every((v) => typeof v === 'number' && !Number.isFinite(v));
  if (def.type === 'nan' || nonFiniteLiteral) {
    for (const key of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[key];
    ctx.jsonSchema.type = 'null';
    ctx.jsonSchema.description = 'a non-finite number (NaN or ±Infinity), written as null';
  }
}

/** The JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1) of a zod schema, as input or as output. */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any', override }) as JsonSchema;
  delete json.$schema; // OpenAPI 3.1's dialect is 2020-12 already; a $schema inside a component is noise
  return json;
}

/** The OpenAPI 3.1 document of the given REST routes. `privateReads`: every route needs the operator credential. */
export function buildOpenApi(routes: readonly RestRoute[], options: { privateReads?: boolean; version?: string } = {}): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const { binding, definition, params } = route;
    const openPath = binding.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const input = definition.input ? jsonSchemaOf(definition.input, 'input') : null;
    const inputProps = (input?.properties ?? {}) as Record<string, JsonSchema>;
    const required = new Set((input?.required as string[] | undefined) ?? []);

    const parameters = [
      ...params.map((name) => ({ name, in: 'path', required: true, schema: inputProps[name] ?? { type: 'string' } })),
      ...(binding.query ?? []).map((name) => ({ name, in: 'query', required: required.has(name), schema: inputProps[name] ?? {} })),
    ];

    let requestBody: unknown;
    if (binding.body && input) {
      // The body is the input minus what the path and the query give.
      const taken = new Set([...params, ...(binding.query ?? [])]);
      const bodySchema: JsonSchema = taken.size === 0 ? input : { ...input, properties: Object.fromEntries(Object.entries(inputProps).filter(([k]) => !taken.has(k))) };
      if (taken.size > 0 && Array.isArray(input.required)) bodySchema.required = (input.required as string[]).filter((k) => !taken.has(k));
      // An input that accepts undefined (an optional object) makes the body optional: an empty body is allowed.
      requestBody = { required: definition.input!.safeParse(undefined).success === false, content: { 'application/json': { schema: bodySchema } } };
    }

    const output = jsonSchemaOf(definition.output, 'output');
    const success = binding.envelope ? { type: 'object', required: [binding.envelope], properties: { [binding.envelope]: output } } : output;
    const status = String(binding.status ?? 200);
    const errors = new Set<number>();
    if (definition.input) errors.add(400);
    const guarded = definition.access === 'operator' || options.privateReads;
    if (guarded) (errors.add(401), errors.add(403));
    if (params.length > 0) errors.add(404);
    if (definition.kind === 'mutation') errors.add(409);

    // Bytes (model weights) are a binary string in their own media type; everything else is JSON.
    const content = binding.contentType ? { [binding.contentType]: { schema: { type: 'string', contentMediaType: binding.contentType } } } : { 'application/json': { schema: success } };
    const responses: Record<string, unknown> = { [status]: { description: 'Success', content } };
    // An unhealthy answer is the same document with 503.
    if (binding.unhealthy) responses['503'] = { description: 'A component the coordinator needs is down (the same body says which)', content };
    for (const code of [...errors].sort()) {
      responses[String(code)] = { description: ERROR_DESCRIPTIONS[code], content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    }

    paths[openPath] ??= {};
    paths[openPath][binding.method.toLowerCase()] = {
      operationId: route.procedure,
      summary: `${route.procedure} (${definition.kind}; also served over tRPC)`,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(requestBody ? { requestBody } : {}),
      responses,
      security: guarded ? [{ bearer: [] }] : [],
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'HyperGPU coordinator REST API',
      version: options.version ?? '0.0.0',
      description: 'Generated at start from the API procedures and their zod schemas; every procedure is also served over tRPC at /trpc.',
    },
    paths,
    components: {
      schemas: { Error: ERROR_SCHEMA },
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The admin token (or the dashboard session cookie)' } },
    },
  };
}
