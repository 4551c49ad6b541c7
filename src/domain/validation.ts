import type { z } from 'zod';
import { invalidRequest } from './errors.js';
import { quoted } from './text.js';

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const key of path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[key] : undefined;
  return v;
}

/** The one bridge from zod to the API's errors: the first issue's path becomes the OpenAI `param`. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const param = issue.path.length ? issue.path.map(String).join('.') : null;
  if (issue.code === 'unrecognized_keys') {
    // zod's own message lists every key, whatever their number and length: name the first, bounded.
    const name = param ? `${param}.${quoted(issue.keys[0]!)}` : quoted(issue.keys[0]!);
    throw invalidRequest(`Unrecognized request argument supplied: ${name}`, name, 'unknown_parameter');
  }
  const missing = issue.code === 'invalid_type' && valueAt(value, issue.path) === undefined;
  const message = missing ? `Missing required parameter: '${param}'.` : param ? `Invalid '${param}': ${issue.message}` : issue.message;
  throw invalidRequest(message, param, missing ? 'missing_required_parameter' : 'invalid_value');
}

/**
 * A route's path parameters, checked by the schema that documents them: an id is held to the same rule in a
 * path as in a body (src/domain/text.ts), so a NUL or an overlong one is a 400 naming it, never a store error.
 */
export function pathParams<S extends z.ZodObject>(c: { req: { param(): Record<string, string> } }, schema: S): z.output<S> {
  return parseOrThrow(schema, c.req.param());
}

/**
 * One path parameter, checked as `pathParams` checks it, with the same error when it fails; only it is decoded
 * and only its own schema runs (every poll names its video: decoding all parameters and the object schema cost
 * about 1 µs of it).
 */
export function pathParam<S extends z.ZodObject, K extends keyof S['shape'] & string>(c: { req: { param(key: K): string | undefined } }, schema: S, key: K): z.output<S>[K] {
  const value = c.req.param(key);
  const field = (schema.shape[key] as z.ZodType).safeParse(value);
  if (field.success) return field.data as z.output<S>[K];
  return parseOrThrow(schema, { [key]: value })[key];
}
