import { describe, expect, it } from 'vitest';
import { expectedEnd, MAX_GAP_MS, MIN_GAP_MS, nextCheckInMs, type JobProgress } from '../../src/tracking/schedule.js';
import { noticeLagMs } from '../../src/tracking/recorder.js';
import { BUILT_IN_MODELS, typicalMs } from '../../src/domain/models.js';

const S = 1000;
const IMAGINE = typicalMs(BUILT_IN_MODELS.find((m) => m.id === 'grok-imagine-video')!);
const job = (over: Partial<JobProgress>): JobProgress => ({ ageMs: 0, typicalMs: IMAGINE, status: 'queued', progress: 0, ...over });

describe('a job is expected to end where its progress heads, else after its model’s usual time', () => {
  it.each<[string, Partial<JobProgress>, number]>([
    ['queued: the model’s usual', { ageMs: 30 * S }, IMAGINE],
    ['running, no progress said: the model’s usual', { ageMs: 30 * S, status: 'in_progress' }, IMAGINE],
    ['25 % after 20 s, nothing seen before: 80 s from its creation', { ageMs: 20 * S, status: 'in_progress', progress: 25 }, 80 * S],
    ['from 20 % at 20 s to 60 % at 30 s: 10 s more at that pace', { ageMs: 30 * S, status: 'in_progress', progress: 60, previous: { ageMs: 20 * S, progress: 20 } }, 40 * S],
    ['queued at the check before (0 %), 50 % at 40 s after it at 30 s: 10 s more', { ageMs: 40 * S, status: 'in_progress', progress: 50, previous: { ageMs: 30 * S, progress: 0 } }, 50 * S],
    ['no progress since the check before: from its creation', { ageMs: 30 * S, status: 'in_progress', progress: 50, previous: { ageMs: 20 * S, progress: 50 } }, 60 * S],
  ])('%s', (_name, over, expected) => {
    expect(expectedEnd(job(over)).ms).toBeCloseTo(expected, 6);
  });
});

describe('when the next check is due', () => {
  const near = IMAGINE * 0.04;
  it.each<[string, Partial<JobProgress>, number]>([
    ['just accepted: the gap near its end already (a job far faster than usual is seen early)', { ageMs: 20 }, near],
    ['young: three quarters of its age', { ageMs: 10 * S }, 7.5 * S],
    ['halfway: a third of the way to its expected end', { ageMs: 40 * S }, 15 * S],
    ['closing in: the gap near its end', { ageMs: 80 * S }, near],
    ['just before its end: just after it', { ageMs: 88 * S }, 2.25 * S],
    ['a little late: the gap near its end', { ageMs: 100 * S }, near],
    ['running long: a quarter of its overtime', { ageMs: 200 * S }, 27.5 * S],
    ['running for hours: at most MAX_GAP_MS apart', { ageMs: 3 * 3600 * S }, MAX_GAP_MS],
    ['its pace says 10 s to go: half the way there (a surer aim than a usual duration)', { ageMs: 30 * S, status: 'in_progress', progress: 60, previous: { ageMs: 20 * S, progress: 20 } }, 5 * S],
    ['its progress alone says 20 s to go, with no pace measured: a third of the way there', { ageMs: 30 * S, status: 'in_progress', progress: 60 }, 6 * S],
    ['never sooner than MIN_GAP_MS', { ageMs: 3 * S, status: 'in_progress', progress: 99, previous: { ageMs: 2 * S, progress: 66 } }, MIN_GAP_MS],
  ])('%s', (_name, over, expected) => {
    expect(nextCheckInMs(job(over))).toBe(Math.round(expected));
  });
});

/**
 * A job checked on this schedule alone (nobody polls), against an upstream that reports progress as the
 * simulator does (queued for the first quarter, then linear) or none at all: how many calls it costs and
 * how late its end is noticed.
 */
function track(durationMs: number, reportsProgress: boolean): { calls: number; lagMs: number } {
  let age = 20;
  let seen = { status: 'queued' as JobProgress['status'], progress: 0 };
  let previous: JobProgress['previous'];
  for (let calls = 1; ; calls++) {
    const at = age;
    age += nextCheckInMs(job({ ageMs: age, ...seen, previous }));
    if (age >= durationMs) return { calls, lagMs: age - durationMs };
    previous = { ageMs: at, progress: seen.progress };
    const running = age >= durationMs / 4;
    seen = { status: running ? 'in_progress' : 'queued', progress: running && reportsProgress ? Math.floor((age / durationMs) * 100) : 0 };
  }
}

describe('what tracking costs, and how late it notices (nobody polling)', () => {
  it.each<[string, number, boolean, number, number]>([
    // name, duration, progress reported, at most this many calls, noticed at most this late
    ['the simulator’s 3 s job', 3 * S, true, 5, 5 * S],
    ['a 10 s job', 10 * S, true, 5, 2 * S],
    ['a usual xAI job (90 s), with progress', 90 * S, true, 11, 2 * S],
    ['a usual xAI job (90 s), without progress', 90 * S, false, 14, 4 * S],
    ['a slow xAI job (2 min), with progress', 120 * S, true, 12, 2 * S],
    ['a slow xAI job (2 min), without progress: dense around the usual end, sparser past it', 120 * S, false, 22, 7 * S],
    ['a job stuck for an hour: calls grow with the log of its length', 3600 * S, false, 45, 10 * 60 * S],
    ['a job stuck for six hours', 6 * 3600 * S, false, 75, MAX_GAP_MS],
  ])('%s', (_name, duration, progress, calls, lagMs) => {
    const t = track(duration, progress);
    expect(t.calls).toBeLessThanOrEqual(calls);
    expect(t.lagMs).toBeLessThanOrEqual(lagMs);
  });
});

describe('the notice lag the metrics report', () => {
  it.each<[string, number, number | undefined, number]>([
    ['the upstream says nothing of its end: since the check before', 10_000, undefined, 4_000],
    ['it ended after the check before: since its end', 10_000, 12_000, 2_000],
    ['its whole-second end precedes the check before: since the check before', 10_000, 9_000, 4_000],
  ])('%s', (_name, checkedBefore, finishedAtMs, lag) => {
    expect(noticeLagMs(checkedBefore, { finishedAtMs }, 14_000)).toBe(lag);
  });
});
