import { randomBytes } from 'node:crypto';
import type { VideoStatus } from '../videos/dialects/task.js';
import type { WebhookDelivery, WebhookEventType } from '../store/types.js';

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

/**
 * OpenAI's event shape; a video event's data names the video, a budget alert's is its own. Built from the
 * stored event alone, so every attempt sends the same bytes.
 */
export function eventBody(d: Pick<WebhookDelivery, 'eventId' | 'createdAt' | 'type' | 'videoId' | 'data'>): string {
  return JSON.stringify({ id: d.eventId, object: 'event', created_at: d.createdAt, type: d.type, data: d.data ?? { id: d.videoId } });
}
