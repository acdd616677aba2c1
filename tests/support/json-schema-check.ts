// A tiny JSON Schema (draft 2020-12) checker for the keywords z.toJSONSchema writes: type, enum, const,
// properties, required, additionalProperties, items, prefixItems, anyOf, oneOf, allOf, numeric bounds, string
// length and pattern, and $ref into the document (#/components/...). Enough to check an API answer against the
// OpenAPI document the server publishes; it returns every mismatch with its JSON path, [] when the value fits.
type Schema = Record<string, any> | boolean;

export function checkJsonSchema(schema: Schema, value: unknown, root: Record<string, any> = {}, at = '$'): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${at}: no value is allowed`];
  if (typeof schema.$ref === 'string') {
    const target = schema.$ref
      .replace(/^#\//, '')
      .split('/')
      .reduce((node: any, key: string) => node?.[key], root);
    if (target === undefined) return [`${at}: unresolved $ref ${schema.$ref}`];
    return checkJsonSchema(target, value, root, at);
  }
  const errors: string[] = [];
  const fail = (why: string) => errors.push(`${at}: ${why}`);
  if (schema.type !== undefined) {
    const types: string[] = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => hasType(t, value))) return [`${at}: expected ${types.join(' | ')}, got ${JSON.stringify(value)?.slice(0, 60)}`];
  }
  if (schema.const !== undefined && JSON.stringify(schema.const) !== JSON.stringify(value)) fail(`expected ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.some((e: unknown) => JSON.stringify(e) === JSON.stringify(value))) fail(`not one of ${JSON.stringify(schema.enum)}`);
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) fail(`below ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) fail(`above ${schema.maximum}`);
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) fail(`not above ${schema.exclusiveMinimum}`);
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) fail(`not below ${schema.exclusiveMaximum}`);
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) fail(`shorter than ${schema.minLength}`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) fail(`longer than ${schema.maxLength}`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) fail(`does not match ${schema.pattern}`);
  }
  if (Array.isArray(value)) {
    const prefix: Schema[] = schema.prefixItems ?? [];
    prefix.forEach((s, i) => i < value.length && errors.push(...checkJsonSchema(s, value[i], root, `${at}[${i}]`)));
    if (schema.items !== undefined) value.slice(prefix.length).forEach((v, i) => errors.push(...checkJsonSchema(schema.items, v, root, `${at}[${i + prefix.length}]`)));
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in object)) fail(`missing ${key}`);
    const properties: Record<string, Schema> = schema.properties ?? {};
    for (const [key, v] of Object.entries(object)) {
      if (key in properties) errors.push(...checkJsonSchema(properties[key], v, root, `${at}.${key}`));
      else if (schema.additionalProperties !== undefined) errors.push(...checkJsonSchema(schema.additionalProperties, v, root, `${at}.${key}`));
    }
  }
  if (Array.isArray(schema.allOf)) for (const s of schema.allOf) errors.push(...checkJsonSchema(s, value, root, at));
  if (Array.isArray(schema.anyOf) && !schema.anyOf.some((s: Schema) => checkJsonSchema(s, value, root, at).length === 0)) fail('matches no anyOf branch');
  if (Array.isArray(schema.oneOf) && schema.oneOf.filter((s: Schema) => checkJsonSchema(s, value, root, at).length === 0).length !== 1) fail('does not match exactly one oneOf branch');
  return errors;
}

function hasType(type: string, value: unknown): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    default:
      return typeof value === type;
  }
}
