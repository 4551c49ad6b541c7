import type { WebhookDelivery } from '../store/types.js';

/**
 * OpenAI's event shape; a video event's data names the video, a budget alert's is its own. Built from the
 * stored event alone, so every attempt sends the same bytes.
 */
export function eventBody(d: Pick<WebhookDelivery, 'eventId' | 'createdAt' | 'type' | 'videoId' | 'data'>): string {
  return JSON.stringify({ id: d.eventId, object: 'event', created_at: d.createdAt, type: d.type, data: d.data ?? { id: d.videoId } });
}
