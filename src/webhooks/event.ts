import type { WebhookDelivery } from '../store/types.js';

/** OpenAI's event shape. Built from the stored event alone, so every attempt sends the same bytes. */
export function eventBody(d: Pick<WebhookDelivery, 'eventId' | 'createdAt' | 'type' | 'videoId'>): string {
  return JSON.stringify({ id: d.eventId, object: 'event', created_at: d.createdAt, type: d.type, data: { id: d.videoId } });
}
