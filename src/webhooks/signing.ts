import { createHmac, randomBytes } from 'node:crypto';
import type { WebhookEndpoint } from '../store/types.js';

/**
 * Standard Webhooks signatures, the scheme OpenAI uses and `client.webhooks.unwrap` verifies: HMAC-SHA256
 * of `{id}.{timestamp}.{body}`, keyed with the bytes the `whsec_` secret encodes in base64.
 */
const PREFIX = 'whsec_';

/** 32 random bytes, in the form the SDKs expect. */
export const newWebhookSecret = () => `${PREFIX}${randomBytes(32).toString('base64')}`;

/** After a rotation each secret it replaced keeps signing this long, so receivers can switch over (§6). */
export const ROTATION_OVERLAP_MS = 24 * 60 * 60 * 1000;
/** Replaced secrets signing at once, at most: each adds an entry to the `webhook-signature` of every delivery. */
export const MAX_PREVIOUS_SECRETS = 10;

/** The previous secrets still inside their overlap. */
export const signingPreviousSecrets = (endpoint: WebhookEndpoint, nowMs: number) => endpoint.previousSecrets.filter((p) => p.expiresAtMs > nowMs);

/** The secrets that sign now: the current one, and every previous one inside its own overlap. */
export function activeSecrets(endpoint: WebhookEndpoint, nowMs: number): string[] {
  return [endpoint.secret, ...signingPreviousSecrets(endpoint, nowMs).map((p) => p.secret)];
}

/** `webhook-signature`: one `v1,<base64>` entry per secret, space-separated. */
export function signatureHeader(secrets: readonly string[], id: string, timestamp: number, body: string): string {
  return secrets
    .map((s) => `v1,${createHmac('sha256', Buffer.from(s.slice(PREFIX.length), 'base64')).update(`${id}.${timestamp}.${body}`).digest('base64')}`)
    .join(' ');
}
