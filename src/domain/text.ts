import { z } from 'zod';

/**
 * The one rule for the strings a client sends that the gateway keeps, sends on or echoes back (ids, names,
 * models, URLs, prompts, short scalars): each is bounded in length, so that what a client sends once is not
 * copied at any size into every poll and list of it, and holds no control characters: PostgreSQL refuses a
 * NUL in text and jsonb (a 500 where a 400 belongs), and an escape sequence in a name or an id would reach an
 * operator's terminal through the CLI and the logs. Free text (a prompt) keeps its tabs and line breaks.
 */

/** Far above any id the gateway makes (`video_` and 32 hex digits) or accepts (team ids: 64). */
export const MAX_ID_CHARS = 128;
export const MAX_NAME_CHARS = 200;
/** `seconds`, `size`, `resolution`, `aspect_ratio`: the longest meaningful one has a dozen characters. */
export const MAX_SCALAR_CHARS = 32;
/** How much of a value the client sent an error message quotes back. */
const MAX_QUOTED_CHARS = 64;

const ONE_LINE = /^[^\u0000-\u001f\u007f-\u009f]*$/;
const FREE_TEXT = /^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$/;
const CONTROLS_RULE = 'must not contain control characters (such as NUL or line breaks)';

/** At most `max` characters on one line; the length is checked first, so a huge value is never scanned. */
export const lineText = (max: number) =>
  z.string().max(max, { message: `must be at most ${max} characters`, abort: true }).regex(ONE_LINE, CONTROLS_RULE);

/** An id in a path, a query or a body. */
export const idText = () => lineText(MAX_ID_CHARS).min(1, 'must not be empty');

/** Free text of at most `max` code points (as JSON Schema's maxLength counts): tabs and line breaks allowed. */
export const freeText = (max: number) =>
  z
    .string()
    // A code point takes at most two UTF-16 units: a longer string cannot be within the bound, and is not split.
    .max(2 * max, { message: `must be at most ${max} characters`, abort: true })
    .refine((s) => [...s].length <= max, { message: `must be at most ${max} characters`, abort: true })
    .regex(FREE_TEXT, 'must not contain control characters other than tabs and line breaks')
    .meta({ maxLength: max });

/** A value the client sent, as an error message may quote it: cut short, so that an answer never grows with it. */
export function quoted(value: string): string {
  return value.length > MAX_QUOTED_CHARS ? `${value.slice(0, MAX_QUOTED_CHARS)}…` : value;
}
