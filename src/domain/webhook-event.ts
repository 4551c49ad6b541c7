import { randomBytes } from 'node:crypto';
import type { VideoStatus } from './job.js';

/** The events a team's webhook endpoint may subscribe to (§6), and `budget.threshold` (§10). */
export const WEBHOOK_EVENT_TYPES = ['video.completed', 'video.failed', 'budget.threshold'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
/** What an endpoint gets when its events are not given: the video events (budget alerts are asked for). */
export const DEFAULT_WEBHOOK_EVENTS: readonly WebhookEventType[] = ['video.completed', 'video.failed'];

export const newEventId = () => `evt_${randomBytes(16).toString('hex')}`;
export const newDeliveryId = () => `whd_${randomBytes(12).toString('hex')}`;

/** The event a terminal status raises; none for a status that is not terminal. */
export function eventTypeFor(status: VideoStatus): WebhookEventType | undefined {
  switch (status) {
    case 'completed':
      return 'video.completed';
    case 'failed':
      return 'video.failed';
    case 'queued':
    case 'in_progress':
      return undefined;
    default: {
      const unreachable: never = status;
      return unreachable;
    }
  }
}
