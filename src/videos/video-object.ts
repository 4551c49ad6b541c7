import type { JobRecord } from '../domain/job.js';
import { microsToUsd } from '../domain/money.js';
import type { VideoObject } from './schemas.js';

/** OpenAI's `size` is `WxH`: the tier is the short side, the long side follows the ratio, rounded to even. */
export function dimensions(tier: number, aspectRatio: string): string {
  const [a, b] = aspectRatio.split(':').map(Number) as [number, number];
  const even = (n: number) => Math.round(n / 2) * 2;
  return a >= b ? `${even((tier * a) / b)}x${tier}` : `${tier}x${even((tier * b) / a)}`;
}

/** The OpenAI Video object for a job; ids are the gateway's own, never the upstream's. */
export function toVideoObject(job: JobRecord, baseUrl: string): VideoObject {
  return {
    id: job.id,
    object: 'video',
    model: job.model,
    status: job.status,
    progress: job.progress,
    created_at: job.createdAt,
    completed_at: job.completedAt,
    expires_at: job.expiresAt,
    prompt: job.prompt,
    seconds: String(job.seconds),
    size: dimensions(job.resolution, job.aspectRatio),
    // OpenAI's Video names a source for remixes only; extensions and edits have no such field.
    remixed_from_video_id: job.derivation === 'remix' ? job.sourceVideoId : null,
    error: job.error,
    resolution: `${job.resolution}P`,
    aspect_ratio: job.aspectRatio,
    video_url: job.status === 'completed' ? `${baseUrl}/v1/videos/${job.id}/content` : null,
    ...(job.status === 'completed' ? { cost: costOf(job) } : {}),
  };
}

/** What a completed video cost (§10); null when nobody knows: no upstream figure and no price, never $0. */
function costOf(job: JobRecord): VideoObject['cost'] {
  return job.costMicros === null || job.costSource === null ? null : { usd: microsToUsd(job.costMicros), source: job.costSource };
}

/** Job records are immutable values, so each one's JSON is rendered once per base URL and reused by every poll. */
const rendered = new WeakMap<JobRecord, { baseUrl: string; json: string }>();

export function videoJson(job: JobRecord, baseUrl: string): string {
  const hit = rendered.get(job);
  if (hit?.baseUrl === baseUrl) return hit.json;
  const json = JSON.stringify(toVideoObject(job, baseUrl));
  rendered.set(job, { baseUrl, json });
  return json;
}
