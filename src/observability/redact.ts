/** Replaces every occurrence of a known secret, and anything shaped like a bearer token, in free text. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 8) out = out.split(s).join('[redacted]');
  return out.replace(/(bearer\s+)[^\s"',;]+/gi, '$1[redacted]');
}

/** The longest upstream message a client is shown (moderation reasons fit easily). */
export const UPSTREAM_MESSAGE_MAX_CHARS = 512;
/** How much of an upstream message is looked at at all: the rest could never reach the client anyway. */
const SCAN_MAX_CHARS = 8 * UPSTREAM_MESSAGE_MAX_CHARS;

/**
 * What of the upstream's internals may hide in its free text, in the order it is replaced: whole URLs and
 * paths before the host names inside them, hosts before the addresses and key-like runs they could contain.
 */
const INTERNALS: ReadonlyArray<readonly [RegExp, string]> = [
  // A stack trace says nothing a client can act on: everything from its first frame on is dropped.
  [/(?:^|\s)(?:at\s+(?:\S+\s+)?\(?[^\s()]+:\d+:\d+\)?|Traceback \(most recent call last\)|goroutine \d+ \[)[\s\S]*$/, ''],
  [/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, '[url]'],
  // Absolute file paths of two segments and more (`/srv/app/x.js`, `C:\app\x.js`).
  [/(?<![\w.])(?:[a-z]:)?(?:[/\\][\w.@-]+){2,}/gi, '[path]'],
  // Dotted host names (two labels and more, alphabetic last label), with the port and path that follow.
  [/\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}\b(?::\d{1,5})?(?:\/[^\s"'<>]*)?/gi, '[host]'],
  [/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b(?:\/[^\s"'<>]*)?/g, '[ip]'],
  [/\[?(?:\b[0-9a-f]{1,4}|)(?::[0-9a-f]{0,4}){2,7}\b\]?(?::\d{1,5})?/gi, '[ip]'],
  // A long run of letters and digits mixing both looks like a key or a token, whatever its prefix.
  [/\b(?=[\w-]*\d)(?=[\w-]*[a-z])[\w-]{24,}/gi, '[redacted]'],
  [/\b(?:sk|xai)-[\w-]{8,}/gi, '[redacted]'],
];

/**
 * The single rule for any upstream free text handed to a client (HTTP error messages and failed-task
 * reasons alike): known secrets and bearer tokens redacted, hosts, URLs, addresses, paths, stack traces and
 * key-like runs replaced, control characters and runs of white space folded to one space, and the result
 * cut to UPSTREAM_MESSAGE_MAX_CHARS. What is left is the upstream's reason in words (a moderation verdict, a
 * field it disliked).
 */
export function clientSafeUpstreamText(text: string, secrets: readonly string[]): string {
  let out = text;
  if (out.length > SCAN_MAX_CHARS) {
    // Cut back to a space: the head of a secret split by the cut would be too short for the rules below.
    const cut = out.slice(0, SCAN_MAX_CHARS);
    const space = cut.search(/\s\S*$/);
    out = space > 0 ? cut.slice(0, space) : '';
  }
  out = redactSecrets(out, secrets);
  for (const [pattern, replacement] of INTERNALS) out = out.replace(pattern, replacement);
  out = out.replace(/[\u0000-\u001f\u007f-\u009f\s]+/g, ' ').trim();
  return out.length > UPSTREAM_MESSAGE_MAX_CHARS ? `${out.slice(0, UPSTREAM_MESSAGE_MAX_CHARS - 1)}…` : out;
}

/** The longest upstream `param` a client is shown: a field name, never prose. */
export const UPSTREAM_PARAM_MAX_CHARS = 64;
/** A field name as the upstreams write them: `prompt`, `images[0]` (a dotted one reads as a host name, and is dropped). */
const FIELD_NAME = /^[A-Za-z_][\w.-]*(?:\[\d*\])*$/;

/**
 * An upstream error's `param`, through the same rule as its text, and passed on only while it still reads as
 * a field name of at most UPSTREAM_PARAM_MAX_CHARS: anything else (prose, a host, a key) is dropped (null).
 */
export function clientSafeUpstreamParam(param: string | null, secrets: readonly string[]): string | null {
  if (param === null) return null;
  const safe = clientSafeUpstreamText(param, secrets);
  return safe.length <= UPSTREAM_PARAM_MAX_CHARS && FIELD_NAME.test(safe) ? safe : null;
}
