import type { NewJob, Principal } from '../../src/store/types.js';

let seq = 0;

/** A job for the store suites to admit: ids unique within a test file, the rest fixed. */
export const newJob = (p: Principal, seconds = 5): NewJob => ({
  id: `video_${++seq}`,
  teamId: p.teamId,
  keyId: p.keyId,
  model: 'grok-video-3',
  prompt: 'x',
  seconds,
  resolution: 720,
  aspectRatio: '16:9',
});
