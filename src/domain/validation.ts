import type { z } from 'zod';
import { invalidRequest } from './errors.js';

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
  const missing = issue.code === 'invalid_type' && valueAt(value, issue.path) === undefined;
  const message = missing ? `Missing required parameter: '${param}'.` : param ? `Invalid '${param}': ${issue.message}` : issue.message;
  throw invalidRequest(message, param, missing ? 'missing_required_parameter' : 'invalid_value');
}
