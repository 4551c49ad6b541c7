import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DELETE_REFRESH_MS, RECORD_CACHE_MS } from '../../src/videos/jobs.js';
import { TestClock, admin, auth, postJson, startHarness, teamWithKey, type Harness } from '../support/harness.js';

let h: Harness;
const clock = new TestClock();
beforeAll(async () => {
  // Jobs stay in progress until a test settles them.
  h = await startHarness({ clock, sim: { completeAfterMs: 3_600_000 } });
});
afterAll(() => h.close());

const create = async (key: string) => (await postJson(`${h.url}/v1/videos`, { prompt: 'x', seconds: 5 }, key)).body as { id: string };
const lastTask = () => [...h.sim.tasks.values()].at(-1)!;
const poll = (key: string, id: string) => fetch(`${h.url}/v1/videos/${id}`, { headers: auth(key) });
const remove = (key: string, id: string) => fetch(`${h.url}/v1/videos/${id}`, { method: 'DELETE', headers: auth(key) });
const usage = async (team: string) => (await admin(h.url, 'GET', `/teams/${team}/usage`)).body;
const stored = (team: string, id: string) => h.gw.store.getJob(team, id);

/** Resolves once the simulated upstream has received a status request for the task. */
async function statusRequested(taskId: string): Promise<void> {
  const path = `/v1/videos/${taskId}`;
  for (let i = 0; i < 500 && !h.sim.requests.some((r) => r.method === 'GET' && r.path === path); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('the tracker (issue 16, 8; issue 21)', () => {
  it('writes back nothing it read when a check fails: progress a replica recorded meanwhile stays', async () => {
    const { key } = await teamWithKey(h.url, 'stale-pass');
    const video = await create(key);
    const task = lastTask();
    // Another gateway on the same store, as a replica would be: it shares no status fetch with this one.
    const replica = await startHarness({ clock, dataDir: h.dataDir, upstream: { sim: h.sim, url: h.upstreamUrl } });
    try {
      h.sim.stallMs = 2_000;
      // The tracker reads the job (queued) and asks the upstream, which holds the call...
      const pass = h.gw.tracker.pass({ all: true });
      await statusRequested(task.id);
      h.sim.stallMs = 0;
      // ...while the replica records progress...
      task.createdAtMs -= task.completeAfterMs / 2;
      expect(await (await fetch(`${replica.url}/v1/videos/${video.id}`, { headers: auth(key) })).json()).toMatchObject({ status: 'in_progress', progress: 50 });
      // ...and then the tracker's call fails.
      task.statusFailure = 500;
      expect(await pass).toBe(1);
      expect(await stored('stale-pass', video.id)).toMatchObject({ status: 'in_progress', progress: 50, statusChecks: 2 });
    } finally {
      await replica.close();
    }
  });
});

describe('deleting a video settles its reservation on the real outcome (issue 16, 6)', () => {
  it('a job that failed upstream and was never polled is refunded, not billed', async () => {
    const { key } = await teamWithKey(h.url, 'del-failed');
    const video = await create(key);
    h.sim.settle(lastTask().id, 'failed');
    expect((await remove(key, video.id)).status).toBe(200);
    expect(await usage('del-failed')).toMatchObject({ active_jobs: 0, day: { video_seconds: 0, video_seconds_reserved: 0 } });
  });

  it('a job that completed upstream unseen, or is still running, is billed', async () => {
    const { key } = await teamWithKey(h.url, 'del-billed');
    const done = await create(key);
    h.sim.settle(lastTask().id, 'completed');
    await create(key).then((running) => remove(key, running.id));
    await remove(key, done.id);
    expect(await usage('del-billed')).toMatchObject({ active_jobs: 0, day: { video_seconds: 10, video_seconds_reserved: 0 } });
  });

  it('a job whose outcome cannot be learned is refunded, and the operator is told', async () => {
    const { key } = await teamWithKey(h.url, 'del-unknown');
    const video = await create(key);
    lastTask().statusFailure = 500;
    expect((await remove(key, video.id)).status).toBe(200);
    expect(await usage('del-unknown')).toMatchObject({ active_jobs: 0, day: { video_seconds: 0, video_seconds_reserved: 0 } });
    expect(h.logs.join('')).toContain(`"videoId":"${video.id}"`);
    expect(h.logs.join('')).toMatch(/deleted with its outcome unknown/);
  });
});

describe('a poll in flight during a delete (issue 16, 6 and 8)', () => {
  it('does not hold the delete past its bound, nor bring the deleted video back once it lands', async () => {
    const { key } = await teamWithKey(h.url, 'del-inflight');
    const video = await create(key);
    const task = lastTask();
    h.sim.settle(task.id, 'completed');
    // The upstream's answer to this poll (completed) is on its way back for longer than a delete waits.
    h.sim.slowAnswersMs = DELETE_REFRESH_MS + 3_000;
    let pollDone = 0;
    const inflight = poll(key, video.id).then((r) => ((pollDone = performance.now()), r));
    await statusRequested(task.id);
    h.sim.slowAnswersMs = 0;

    expect((await remove(key, video.id)).status).toBe(200);
    const deleteDone = performance.now();
    // Outcome not learned in time: refunded.
    expect((await usage('del-inflight')).day).toMatchObject({ video_seconds: 0, video_seconds_reserved: 0 });
    // The in-flight answer lands after any fixed tombstone would have expired.
    clock.advance(RECORD_CACHE_MS + 1_000);
    expect((await inflight).status).toBe(200);
    expect(deleteDone).toBeLessThan(pollDone);
    expect((await poll(key, video.id)).status).toBe(404);
    expect((await usage('del-inflight')).day.video_seconds).toBe(0);
  }, 30_000);
});
