/** Replaces every occurrence of a known secret, and anything shaped like a bearer token, in free text. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 8) out = out.split(s).join('[redacted]');
  return out.replace(/(bearer\s+)[^\s"',;]+/gi, '$1[redacted]');
}
