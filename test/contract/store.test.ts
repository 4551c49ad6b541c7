import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import type { IdempotencyClaimRequest, Principal, Store, StoreChange } from '../../src/store/types.js';
import type { WebhookEventType } from '../../src/domain/webhook-event.js';
import { freshDatabase, postgresUrl } from '../support/postgres.js';
import { newJob } from '../support/store.js';

/**
 * The store contract, written once against the interface: every store implementation is added to
 * `stores` and must pass the same suite. `place` makes an empty home for a store (a directory, a database)
 * that `open` can open any number of times, as a restarted process would.
 */
interface Place {
  open(): Promise<Store>;
  dispose(): Promise<void>;
}
const stores: Array<{ name: string; available: boolean; place: () => Promise<Place> }> = [
  {
    name: 'sqlite (real file)',
    available: true,
    place: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'gw-store-'));
      return { open: async () => SqliteStore.inDataDir(dir), dispose: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    // The contract fixes the instants it tests at, so the PostgreSQL store takes the caller's clock here;
    // test/contract/postgres-store.test.ts runs it on the database's clock, as the gateway does.
    name: 'postgres (real server)',
    available: postgresUrl !== null,
    place: async () => {
      const db = await freshDatabase();
      return { open: () => PostgresStore.open({ url: db.url, clock: 'caller' }), dispose: db.drop };
    },
  },
];

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const principal = (over: Partial<Principal> = {}): Principal => ({ teamId: 't1', keyId: 'k1', teamPolicy: {}, keyPolicy: {}, ...over });

for (const { name, available, place } of stores) describe.skipIf(!available)(`store contract: ${name}`, () => {
  let home: Place;
  let store: Store;
  beforeEach(async () => {
    home = await place();
    store = await home.open();
  });
  afterEach(async () => {
    await store.close();
    await home.dispose();
  });

  it('admits up to the concurrency limit, then refuses without reserving', async () => {
    const p = principal({ teamPolicy: { max_concurrent_jobs: 2, requests_per_minute: 10 } });
    expect((await store.admitJob(p, newJob(p), NOW)).ok).toBe(true);
    expect((await store.admitJob(p, newJob(p), NOW)).ok).toBe(true);
    const refused = await store.admitJob(p, newJob(p), NOW);
    expect(refused).toEqual({ ok: false, refusal: { kind: 'concurrency', scope: 'team', limit: 2 } });
    const u = await store.usage('t1', NOW, 1);
    // A job's request was counted when it arrived (admitRequest), never again by its admission.
    expect(u).toMatchObject({ activeJobs: 2, requestsThisMinute: 0, day: { video_seconds: 10, requests: 0 } });
  });

  it('counts requests against the per-minute limits of key and team; a job admission neither checks nor counts them', async () => {
    const p = principal({ keyPolicy: { requests_per_minute: 1 }, teamPolicy: { requests_per_minute: 5 } });
    expect(await store.admitRequest(p, NOW)).toEqual({ ok: true, rate: { limit: 1, remaining: 0, resetMs: 60_000 } });
    expect(await store.admitRequest(p, NOW)).toEqual({ ok: false, refusal: { kind: 'rate', scope: 'key', limit: 1, retryAfterMs: 60_000 } });
    // The create that request was for is still admitted, and counts no second request.
    expect(await store.admitJob(p, newJob(p), NOW)).toEqual({ ok: true, rate: null });
    expect(await store.usage('t1', NOW, 1)).toMatchObject({ requestsThisMinute: 1, day: { requests: 1 } });
  });

  it('settles a completed job once and refunds a failed one once', async () => {
    const p = principal();
    const a = newJob(p, 4);
    const b = newJob(p, 6);
    await store.admitJob(p, a, NOW);
    await store.admitJob(p, b, NOW);
    await store.activateJob(a.id, 'up-a', 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'upstream-a');
    await store.activateJob(b.id, 'up-b', 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'upstream-a');
    for (let i = 0; i < 3; i++) {
      await store.updateJob(a.id, { status: 'completed', progress: 100, error: null }, NOW);
      await store.updateJob(b.id, { status: 'failed', progress: 10, error: { code: 'x', message: 'y' } }, NOW);
    }
    const u = await store.usage('t1', NOW, 1);
    expect(u.activeJobs).toBe(0);
    expect(u.day).toMatchObject({ video_seconds: 4, video_seconds_reserved: 0 });
    expect((await store.getJob('t1', a.id))?.completedAt).toBe(NOW / 1000);
    // A terminal job does not move again.
    await store.updateJob(a.id, { status: 'in_progress', progress: 1, error: null }, NOW);
    expect((await store.getJob('t1', a.id))?.status).toBe('completed');
  });

  it('abandons a create: refunded once and hidden from its team', async () => {
    const p = principal();
    const j = newJob(p, 7);
    await store.admitJob(p, j, NOW);
    await store.abandonJob(j.id, NOW);
    await store.abandonJob(j.id, NOW);
    expect(await store.getJob('t1', j.id)).toBeUndefined();
    expect((await store.listJobs('t1', { limit: 10, order: 'desc' })).jobs).toEqual([]);
    expect(await store.activeJobs(10)).toEqual([]);
    expect(await store.usage('t1', NOW, 1)).toMatchObject({ activeJobs: 0, day: { video_seconds: 0, video_seconds_reserved: 0 } });
  });

  it('a late activation brings an abandoned create back, its reservation taken again once', async () => {
    const p = principal({ teamPolicy: { max_concurrent_jobs: 1, video_seconds_per_day: 7 } });
    const j = newJob(p, 7);
    await store.admitJob(p, j, NOW);
    await store.abandonJob(j.id, NOW);
    // Another create took the freed slot and seconds meanwhile: the upstream has both jobs, so both count.
    const other = newJob(p, 7);
    expect((await store.admitJob(p, other, NOW)).ok).toBe(true);
    const active = await store.activateJob(j.id, 'up-late', 'fp', { status: 'in_progress', progress: 5, error: null }, NOW + 1000, 'upstream-a');
    expect(active).toMatchObject({ id: j.id, upstreamId: 'up-late', status: 'in_progress', charge: 'reserved', error: null });
    expect((await store.getJob('t1', j.id))?.upstreamId).toBe('up-late');
    expect(await store.usage('t1', NOW, 1)).toMatchObject({ activeJobs: 2, day: { video_seconds: 14, video_seconds_reserved: 14 } });
    await store.updateJob(j.id, { status: 'completed', progress: 100, error: null }, NOW + 2000);
    expect((await store.usage('t1', NOW, 1)).day).toMatchObject({ video_seconds: 14, video_seconds_reserved: 7 });
  });

  it('records which upstream and key placed a job, and the media URL a status names, keeping it through later updates', async () => {
    const p = principal();
    const j = newJob(p, 3);
    await store.admitJob(p, j, NOW);
    expect(await store.getJob('t1', j.id)).toMatchObject({ upstreamName: null, mediaUrl: null });
    await store.activateJob(j.id, 'req-1', 'fp-1', { status: 'queued', progress: 0, error: null }, NOW, 'xai-main');
    expect(await store.getJob('t1', j.id)).toMatchObject({ upstreamId: 'req-1', upstreamKeyFp: 'fp-1', upstreamName: 'xai-main', mediaUrl: null });
    await store.updateJob(j.id, { status: 'in_progress', progress: 50, error: null, mediaUrl: 'https://vidgen.x.ai/a.mp4' }, NOW + 1);
    await store.updateJob(j.id, { status: 'completed', progress: 100, error: null }, NOW + 2);
    expect(await store.getJob('t1', j.id)).toMatchObject({ status: 'completed', upstreamName: 'xai-main', mediaUrl: 'https://vidgen.x.ai/a.mp4' });
  });

  it("records a derived video's source and operation, through activation and updates; a created one has none", async () => {
    const p = principal();
    const plain = newJob(p, 3);
    const derived = { ...newJob(p, 4), sourceVideoId: plain.id, derivation: 'extension' as const };
    await store.admitJob(p, plain, NOW);
    await store.admitJob(p, derived, NOW);
    expect(await store.getJob('t1', plain.id)).toMatchObject({ sourceVideoId: null, derivation: null });
    await store.activateJob(derived.id, 'req-2', 'fp-1', { status: 'queued', progress: 0, error: null }, NOW, 'up');
    await store.updateJob(derived.id, { status: 'completed', progress: 100, error: null }, NOW + 1);
    expect(await store.getJob('t1', derived.id)).toMatchObject({ sourceVideoId: plain.id, derivation: 'extension', seconds: 4, status: 'completed' });
    expect((await store.listJobs('t1', { limit: 10, order: 'asc' })).jobs.map((j) => j.derivation)).toEqual([null, 'extension']);
  });

  it('an abandon that comes after the activation does nothing', async () => {
    const p = principal();
    const j = newJob(p, 3);
    await store.admitJob(p, j, NOW);
    await store.activateJob(j.id, 'up', 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'upstream-a');
    await store.abandonJob(j.id, NOW);
    expect(await store.getJob('t1', j.id)).toMatchObject({ upstreamId: 'up', charge: 'reserved' });
    expect((await store.usage('t1', NOW, 1)).day.video_seconds_reserved).toBe(3);
  });

  it('a pending create deleted by its team (refunded: outcome unknown) stays deleted and is charged when the upstream accepts it', async () => {
    const p = principal();
    const j = newJob(p, 4);
    await store.admitJob(p, j, NOW);
    expect(await store.deleteJob('t1', j.id, NOW, 'refund')).toBe(true);
    expect((await store.usage('t1', NOW, 1)).day).toMatchObject({ video_seconds: 0, video_seconds_reserved: 0 });
    await store.activateJob(j.id, 'up', 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'upstream-a');
    expect(await store.getJob('t1', j.id)).toBeUndefined();
    expect((await store.usage('t1', NOW, 1)).day).toMatchObject({ video_seconds: 4, video_seconds_reserved: 0 });
  });

  it('charges a job to the day and month it was admitted in, even when it ends the next day', async () => {
    const p = principal();
    const j = newJob(p, 5);
    await store.admitJob(p, j, NOW);
    await store.activateJob(j.id, 'u', 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'upstream-a');
    const tomorrow = NOW + 86_400_000;
    await store.updateJob(j.id, { status: 'completed', progress: 100, error: null }, tomorrow);
    expect((await store.usage('t1', NOW, 1)).day).toMatchObject({ video_seconds: 5, video_seconds_reserved: 0 });
    expect((await store.usage('t1', tomorrow, 1)).day.video_seconds).toBe(0);
  });

  it('scopes jobs to their team and pages them', async () => {
    const p1 = principal();
    const p2 = principal({ teamId: 't2', keyId: 'k2' });
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const j = newJob(p1);
      ids.push(j.id);
      await store.admitJob(p1, j, NOW);
    }
    await store.admitJob(p2, newJob(p2), NOW);
    expect(await store.getJob('t2', ids[0]!)).toBeUndefined();
    const page = await store.listJobs('t1', { limit: 2, order: 'desc' });
    expect(page.jobs.map((j) => j.id)).toEqual([ids[2], ids[1]]);
    expect(page.hasMore).toBe(true);
    expect((await store.listJobs('t1', { limit: 5, order: 'asc', after: ids[0] })).jobs.map((j) => j.id)).toEqual([ids[1], ids[2]]);
    expect((await store.listJobs('t2', { limit: 5, order: 'asc', after: ids[0] })).jobs).toEqual([]);
    expect(await store.deleteJob('t2', ids[0]!, NOW, 'settle')).toBe(false);
    expect(await store.deleteJob('t1', ids[0]!, NOW, 'settle')).toBe(true);
    expect(await store.getJob('t1', ids[0]!)).toBeUndefined();
  });

  it('keeps teams and keys, finds keys by hash only, and revokes', async () => {
    expect(await store.createTeam({ id: 'acme', name: null, quota: { requests_per_minute: 5 } }, NOW)).toMatchObject({ ok: true, team: { id: 'acme' } });
    expect(await store.createTeam({ id: 'acme', name: null, quota: {} }, NOW)).toEqual({ ok: false, reason: 'exists' });
    await store.createKey({ id: 'key_1', teamId: 'acme', name: null, prefix: 'gvk_abc', hash: 'h1', quota: {}, createdAt: 1, expiresAt: null });
    expect((await store.findKeyByHash('h1'))?.team.quota).toEqual({ requests_per_minute: 5 });
    expect(await store.findKeyByHash('h2')).toBeUndefined();
    expect((await store.revokeKey('key_1', NOW))?.revokedAt).toBe(NOW / 1000);
    expect(await store.deleteTeam('acme', NOW)).toBe(true);
    expect(await store.findKeyByHash('h1')).toBeUndefined();
  });

  it("never gives a deleted team's id to a new team, which would inherit its videos, usage and slots", async () => {
    await store.createTeam({ id: 'reuse', name: 'Old', quota: {} }, NOW);
    await store.createKey({ id: 'key_old', teamId: 'reuse', name: null, prefix: 'gvk_old', hash: 'h-old', quota: {}, createdAt: 1, expiresAt: null });
    const p = principal({ teamId: 'reuse', keyId: 'key_old', teamPolicy: { max_concurrent_jobs: 1 } });
    const j = newJob(p, 5);
    await store.admitJob(p, j, NOW);
    expect(await store.deleteTeam('reuse', NOW)).toBe(true);

    expect(await store.createTeam({ id: 'reuse', name: 'New', quota: {} }, NOW)).toEqual({ ok: false, reason: 'deleted' });
    // Gone from every team operation, for good.
    expect(await store.getTeam('reuse')).toBeUndefined();
    expect((await store.listTeams()).map((t) => t.id)).not.toContain('reuse');
    expect(await store.updateTeam('reuse', { name: 'New' })).toBeUndefined();
    expect(await store.deleteTeam('reuse', NOW)).toBe(false);
    expect(await store.findKeyByHash('h-old')).toBeUndefined();
    // What the team did stays on record under its id.
    expect((await store.getJob('reuse', j.id))?.prompt).toBe('x');
    expect((await store.usage('reuse', NOW, 1)).day.video_seconds).toBe(5);
    await store.close();
    store = await home.open();
    expect(await store.createTeam({ id: 'reuse', name: 'New', quota: {} }, NOW)).toEqual({ ok: false, reason: 'deleted' });
  });

  it("recording a job's next check changes nothing but its due time, its calls and its refreshed-at time", async () => {
    const p = principal();
    const [a, b] = [newJob(p), newJob(p)];
    await store.admitJob(p, a, NOW);
    await store.admitJob(p, b, NOW);
    await store.activateJob(a.id, 'up-a', 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'upstream-a');
    await store.activateJob(b.id, 'up-b', 'fp', { status: 'queued', progress: 0, error: null }, NOW + 1, 'upstream-a');
    // A poll records progress after the tracker read `a` as queued; the tracker's check then fails.
    await store.updateJob(a.id, { status: 'in_progress', progress: 40, error: null }, NOW + 2);
    await store.scheduleChecks([{ id: a.id, inMs: 5_000, checks: 1 }], NOW + 3);
    expect(await store.getJob('t1', a.id)).toMatchObject({ status: 'in_progress', progress: 40, updatedAtMs: NOW + 3, statusChecks: 1 });
    expect((await store.activeJobs(10)).map((j) => j.id)).toEqual([b.id, a.id]);
    const due = { horizonMs: 0, pendingGraceMs: 60_000 };
    // `b` never had a check recorded: due at once. `a` is due 5 s after its check.
    expect((await store.claimDueJobs(10, 60_000, NOW + 5_002, due)).map((j) => j.id)).toEqual([b.id]);
    expect((await store.claimDueJobs(10, 60_000, NOW + 5_003, due)).map((j) => j.id)).toEqual([a.id]);
    // No due time and no calls: the claim ends, and nothing else moves.
    await store.scheduleChecks([{ id: a.id, inMs: null, checks: 0 }], NOW + 5_004);
    expect(await store.getJob('t1', a.id)).toMatchObject({ updatedAtMs: NOW + 3, statusChecks: 1 });
    expect((await store.claimDueJobs(10, 60_000, NOW + 5_004, due)).map((j) => j.id)).toEqual([a.id]);
  });

  it('what a check saw of a running job moves it forward only, and never touches an ended job', async () => {
    const p = principal();
    const [a, b] = [newJob(p), newJob(p)];
    await store.admitJob(p, a, NOW);
    await store.admitJob(p, b, NOW);
    await store.activateJob(a.id, 'up-a', 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'upstream-a');
    await store.activateJob(b.id, 'up-b', 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'upstream-a');
    await store.scheduleChecks([{ id: a.id, inMs: 1_000, checks: 1, seen: { status: 'in_progress', progress: 40 } }], NOW + 1);
    expect(await store.getJob('t1', a.id)).toMatchObject({ status: 'in_progress', progress: 40, updatedAtMs: NOW + 1, statusChecks: 1 });
    // A write that comes late (another replica's older answer) undoes nothing.
    await store.scheduleChecks([{ id: a.id, inMs: 1_000, checks: 1, seen: { status: 'queued', progress: 10 } }], NOW + 2);
    expect(await store.getJob('t1', a.id)).toMatchObject({ status: 'in_progress', progress: 40, statusChecks: 2 });
    // Ended meanwhile: it stays as its end left it.
    await store.updateJob(b.id, { status: 'completed', progress: 100, error: null }, NOW + 3);
    await store.scheduleChecks([{ id: b.id, inMs: 1_000, checks: 1, seen: { status: 'in_progress', progress: 90 } }], NOW + 4);
    expect(await store.getJob('t1', b.id)).toMatchObject({ status: 'completed', progress: 100, charge: 'settled' });
  });

  it.each<[string, 'settle' | 'refund', number]>([
    ['settles', 'settle', 5],
    ['refunds', 'refund', 0],
  ])('deleting a job still holding its reservation %s it once, as asked', async (_n, held, charged) => {
    const p = principal();
    const j = newJob(p, 5);
    await store.admitJob(p, j, NOW);
    await store.activateJob(j.id, 'up', 'fp', { status: 'in_progress', progress: 10, error: null }, NOW, 'upstream-a');
    expect(await store.deleteJob('t1', j.id, NOW, held)).toBe(true);
    expect(await store.deleteJob('t1', j.id, NOW, held)).toBe(false);
    const u = await store.usage('t1', NOW, 1);
    expect(u).toMatchObject({ activeJobs: 0, day: { video_seconds: charged, video_seconds_reserved: 0 } });
    expect(await store.activeJobs(10)).toEqual([]);
  });

  it('a delete decides on the job as its own transaction finds it, asked only while the job holds a reservation', async () => {
    const p = principal();
    const [running, ended] = [newJob(p, 5), newJob(p, 3)];
    await store.admitJob(p, running, NOW);
    await store.admitJob(p, ended, NOW);
    await store.activateJob(running.id, 'up-running', 'fp', { status: 'in_progress', progress: 10, error: null }, NOW, 'upstream-a');
    await store.activateJob(ended.id, 'up-ended', 'fp', { status: 'failed', progress: 100, error: null }, NOW, 'upstream-a');
    const asked: Array<string | null> = [];
    const decide = (job: { upstreamId: string | null }) => {
      asked.push(job.upstreamId);
      return job.upstreamId === null ? ('refund' as const) : ('settle' as const);
    };
    expect(await store.deleteJob('t1', running.id, NOW, decide)).toBe(true);
    expect(await store.deleteJob('t1', ended.id, NOW, decide)).toBe(true);
    expect(asked).toEqual(['up-running']);
    expect((await store.usage('t1', NOW, 1)).day).toMatchObject({ video_seconds: 5, video_seconds_reserved: 0 });
  });

  it.each<['completed' | 'failed', number]>([
    ['completed', 5],
    ['failed', 0],
  ])('deleting a job that ended %s keeps the charge its end decided', async (status, charged) => {
    const p = principal();
    const j = newJob(p, 5);
    await store.admitJob(p, j, NOW);
    await store.activateJob(j.id, 'up', 'fp', { status, progress: 100, error: null }, NOW, 'upstream-a');
    await store.deleteJob('t1', j.id, NOW, status === 'completed' ? 'refund' : 'settle');
    expect((await store.usage('t1', NOW, 1)).day).toMatchObject({ video_seconds: charged, video_seconds_reserved: 0 });
  });

  it('reports the active jobs of each team', async () => {
    const p1 = principal();
    const p2 = principal({ teamId: 't2', keyId: 'k2' });
    const [a, b, c] = [newJob(p1), newJob(p1), newJob(p2)];
    await store.admitJob(p1, a, NOW);
    await store.admitJob(p1, b, NOW + 5);
    await store.admitJob(p2, c, NOW + 7);
    await store.updateJob(b.id, { status: 'completed', progress: 100, error: null }, NOW + 9);
    const stats = await store.activeJobStats();
    expect([...stats].sort((x, y) => x.teamId.localeCompare(y.teamId))).toEqual([
      { teamId: 't1', jobs: 1 },
      { teamId: 't2', jobs: 1 },
    ]);
  });

  it("reports the tracker's backlog: checks due and not taken, and how soon the next is due", async () => {
    const p = principal();
    expect(await store.dueChecks(NOW)).toEqual({ due: 0, nextInMs: null });
    const [a, b, pending] = [newJob(p), newJob(p), newJob(p)];
    for (const j of [a, b, pending]) await store.admitJob(p, j, NOW);
    await store.activateJob(a.id, 'up-a', 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'upstream-a');
    await store.activateJob(b.id, 'up-b', 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'upstream-a');
    await store.scheduleChecks([{ id: a.id, inMs: 1_000, checks: 0 }, { id: b.id, inMs: 3_000, checks: 0 }], NOW);
    // A create still waiting for its upstream id is nobody's check yet.
    expect(await store.dueChecks(NOW)).toEqual({ due: 0, nextInMs: 1_000 });
    expect(await store.dueChecks(NOW + 2_000)).toEqual({ due: 1, nextInMs: -1_000 });
    // What a tracker holds is not waiting.
    await store.claimDueJobs(10, 60_000, NOW + 2_000, { horizonMs: 0, pendingGraceMs: 60_000 });
    expect(await store.dueChecks(NOW + 4_000)).toEqual({ due: 1, nextInMs: -1_000 });
    expect(await store.nextCheckInMs(NOW + 4_000)).toBe(-1_000);
  });

  describe('webhook outbox', () => {
    const endpoint = { url: 'https://hooks.example.com/in', events: ['video.completed', 'video.failed'] as const, enabled: true };
    const running = async (p: Principal, at = NOW) => {
      const j = newJob(p);
      await store.admitJob(p, j, at);
      await store.activateJob(j.id, `up-${j.id}`, 'fp', { status: 'in_progress', progress: 1, error: null }, at, 'upstream-a');
      return j;
    };
    const completed = { status: 'completed', progress: 100, error: null } as const;
    const failed = { status: 'failed', progress: 3, error: { code: 'generation_failed', message: 'no' } } as const;

    it('keeps one endpoint per team: created with its secret, replaced keeping it, rotated, deleted, gone with its team', async () => {
      const first = await store.putWebhook('t1', endpoint, 'whsec_a', NOW);
      expect(first).toMatchObject({ created: true, endpoint: { teamId: 't1', url: endpoint.url, enabled: true, secret: 'whsec_a', previousSecrets: [] } });
      expect(first.endpoint.events).toEqual(['video.completed', 'video.failed']);
      const second = await store.putWebhook('t1', { url: 'https://other.example.com/', events: ['video.failed'], enabled: false }, 'whsec_ignored', NOW + 1000);
      expect(second).toMatchObject({ created: false, endpoint: { url: 'https://other.example.com/', events: ['video.failed'], enabled: false, secret: 'whsec_a' } });
      expect(second.endpoint.createdAt).toBe(first.endpoint.createdAt);
      expect(await store.rotateWebhookSecret('t1', 'whsec_b', 86_400_000, 10, NOW)).toMatchObject({
        ok: true,
        endpoint: { secret: 'whsec_b', previousSecrets: [{ secret: 'whsec_a', expiresAtMs: NOW + 86_400_000 }] },
      });
      expect(await store.rotateWebhookSecret('nobody', 'whsec_c', 1, 10, NOW)).toEqual({ ok: false, endpoint: undefined });
      expect(await store.deleteWebhook('t1')).toBe(true);
      expect(await store.deleteWebhook('t1')).toBe(false);
      expect(await store.getWebhook('t1')).toBeUndefined();
      await store.createTeam({ id: 't9', name: null, quota: {} }, NOW);
      await store.putWebhook('t9', endpoint, 'whsec_x', NOW);
      await store.deleteTeam('t9', NOW);
      expect(await store.getWebhook('t9')).toBeUndefined();
    });

    it('keeps every replaced secret until its own expiry, drops it then, and refuses a rotation while the most allowed still sign', async () => {
      const DAY = 86_400_000;
      await store.putWebhook('t1', endpoint, 'whsec_a', NOW);
      await store.rotateWebhookSecret('t1', 'whsec_b', DAY, 3, NOW);
      const twice = await store.rotateWebhookSecret('t1', 'whsec_c', DAY, 3, NOW + 3_600_000);
      expect(twice).toEqual({ ok: true, endpoint: expect.objectContaining({ secret: 'whsec_c' }) });
      const expiries = (e: { previousSecrets: readonly { secret: string; expiresAtMs: number }[] }) =>
        Object.fromEntries(e.previousSecrets.map((p) => [p.secret, p.expiresAtMs]));
      expect(expiries((await store.getWebhook('t1'))!)).toEqual({ whsec_a: NOW + DAY, whsec_b: NOW + 3_600_000 + DAY });
      await store.rotateWebhookSecret('t1', 'whsec_d', DAY, 3, NOW + 7_200_000);
      const full = await store.rotateWebhookSecret('t1', 'whsec_e', DAY, 3, NOW + 7_200_000);
      expect(full.ok).toBe(false);
      expect(full.endpoint).toMatchObject({ secret: 'whsec_d' });
      expect(Object.keys(expiries(full.endpoint!)).sort()).toEqual(['whsec_a', 'whsec_b', 'whsec_c']);
      // Once whsec_a has expired, a rotation goes through and drops it.
      const later = await store.rotateWebhookSecret('t1', 'whsec_e', DAY, 3, NOW + DAY + 1);
      expect(later.ok).toBe(true);
      expect(expiries(later.endpoint!)).toEqual({ whsec_b: NOW + 3_600_000 + DAY, whsec_c: NOW + 7_200_000 + DAY, whsec_d: NOW + 2 * DAY + 1 });
    });

    it("puts exactly one event in the outbox when a job ends, only when the team's enabled endpoint subscribes to it", async () => {
      const p = principal();
      const other = principal({ teamId: 't2', keyId: 'k2' });
      const unhooked = await running(p);
      await store.updateJob(unhooked.id, completed, NOW);
      expect(await store.listDeliveries('t1', 10)).toEqual([]);

      await store.putWebhook('t1', { ...endpoint, events: ['video.failed'] }, 'whsec_a', NOW);
      await store.putWebhook('t2', endpoint, 'whsec_b', NOW);
      const [done, broken, racing, otherTeams] = [await running(p), await running(p), await running(p), await running(other)];
      await store.updateJob(done.id, completed, NOW + 1000);
      await store.updateJob(broken.id, failed, NOW + 2000);
      await store.updateJob(broken.id, failed, NOW + 3000);
      // Every path that sees the end at once (polls, the tracker, replicas): one event all the same.
      await Promise.all(Array.from({ length: 6 }, () => store.updateJob(racing.id, failed, NOW + 4000)));
      await store.updateJob(otherTeams.id, completed, NOW);

      const mine = await store.listDeliveries('t1', 10);
      expect(mine.map((d) => [d.videoId, d.type])).toEqual([
        [racing.id, 'video.failed'],
        [broken.id, 'video.failed'],
      ]);
      expect(mine[1]).toMatchObject({ teamId: 't1', status: 'pending', attempts: 0, createdAt: (NOW + 2000) / 1000, nextAttemptAtMs: NOW + 2000 });
      expect(mine[1]!.eventId).toMatch(/^evt_/);
      expect(new Set(mine.map((d) => d.eventId)).size).toBe(2);
      expect((await store.listDeliveries('t2', 10)).map((d) => [d.videoId, d.type])).toEqual([[otherTeams.id, 'video.completed']]);

      await store.putWebhook('t1', { ...endpoint, enabled: false }, 'whsec_a', NOW);
      await store.updateJob((await running(p)).id, completed, NOW);
      // A video its team deleted while it ran raises no event.
      await store.putWebhook('t1', endpoint, 'whsec_a', NOW);
      const deleted = await running(p);
      await store.deleteJob('t1', deleted.id, NOW, 'settle');
      await store.updateJob(deleted.id, completed, NOW);
      expect(await store.listDeliveries('t1', 10)).toHaveLength(2);
    });

    it('claims each due delivery once, under a lease, and hands it out again when the lease runs out', async () => {
      const p = principal();
      await store.putWebhook('t1', endpoint, 'whsec_a', NOW);
      const j = await running(p);
      await store.updateJob(j.id, completed, NOW);
      expect(await store.claimDeliveries(10, 60_000, NOW - 1)).toEqual([]);
      // Claimers at once (replicas) never share a delivery.
      const claims = (await Promise.all(Array.from({ length: 5 }, () => store.claimDeliveries(10, 60_000, NOW)))).flat();
      expect(claims).toHaveLength(1);
      const first = claims[0]!;
      expect(first).toMatchObject({ videoId: j.id, attempts: 0 });
      expect(await store.claimDeliveries(10, 60_000, NOW + 59_999)).toEqual([]);
      // Its holder died mid-delivery: once the lease runs out, another takes it over, and the first may not record.
      const [second] = await store.claimDeliveries(10, 60_000, NOW + 60_000);
      expect(second).toMatchObject({ id: first.id, eventId: first.eventId, attempts: 0 });
      expect(second!.leaseToken).not.toBe(first.leaseToken);
      const ok = { delivered: true, status: 200, error: null, latencyMs: 12, retryInMs: null };
      expect(await store.recordAttempt(first.id, first.leaseToken, ok, NOW + 60_001)).toBe(false);
      expect(await store.recordAttempt(first.id, second!.leaseToken, ok, NOW + 60_001)).toBe(true);
      expect(await store.recordAttempt(first.id, second!.leaseToken, ok, NOW + 60_002)).toBe(false);
      const [done] = await store.listDeliveries('t1', 10);
      expect(done).toMatchObject({ status: 'delivered', attempts: 1, lastStatus: 200, lastLatencyMs: 12, deliveredAtMs: NOW + 60_001, nextAttemptAtMs: null });
      expect(await store.claimDeliveries(10, 60_000, NOW + 10 * 86_400_000)).toEqual([]);
    });

    it('records attempts: retried when due, failed for good after the last, and replayed on demand', async () => {
      const p = principal();
      await store.putWebhook('t1', endpoint, 'whsec_a', NOW);
      const j = await running(p);
      await store.updateJob(j.id, failed, NOW);
      const [c1] = await store.claimDeliveries(10, 60_000, NOW);
      expect(await store.recordAttempt(c1!.id, c1!.leaseToken, { delivered: false, status: 500, error: 'HTTP 500', latencyMs: 3, retryInMs: 5_000 }, NOW + 10)).toBe(true);
      expect((await store.listDeliveries('t1', 1))[0]).toMatchObject({ status: 'pending', attempts: 1, lastStatus: 500, lastError: 'HTTP 500', nextAttemptAtMs: NOW + 5_010 });
      expect(await store.claimDeliveries(10, 60_000, NOW + 5_009)).toEqual([]);
      const [c2] = await store.claimDeliveries(10, 60_000, NOW + 5_010);
      expect(c2).toMatchObject({ eventId: c1!.eventId, attempts: 1 });
      await store.recordAttempt(c2!.id, c2!.leaseToken, { delivered: false, status: null, error: 'timeout', latencyMs: 10_000, retryInMs: null }, NOW + 6_000);
      expect((await store.listDeliveries('t1', 1))[0]).toMatchObject({ status: 'failed', attempts: 2, lastStatus: null, lastError: 'timeout', nextAttemptAtMs: null });
      expect(await store.claimDeliveries(10, 60_000, NOW + 10 * 86_400_000)).toEqual([]);

      expect(await store.replayDelivery('t2', c1!.id, NOW)).toBeUndefined();
      expect(await store.replayDelivery('t1', c1!.id, NOW + 7_000)).toMatchObject({ status: 'pending', attempts: 0, nextAttemptAtMs: NOW + 7_000 });
      const [c3] = await store.claimDeliveries(10, 60_000, NOW + 7_000);
      expect(c3).toMatchObject({ id: c1!.id, eventId: c1!.eventId });
    });

    it("hands out due deliveries in turns across teams, and no more of a team's than bring it to its share", async () => {
      const [p1, p2] = [principal(), principal({ teamId: 't2', keyId: 'k2' })];
      await store.putWebhook('t1', endpoint, 'whsec_a', NOW);
      await store.putWebhook('t2', endpoint, 'whsec_b', NOW);
      const mine = [await running(p1), await running(p1), await running(p1), await running(p1)];
      const theirs = await running(p2);
      for (const [i, j] of mine.entries()) await store.updateJob(j.id, completed, NOW + i);
      await store.updateJob(theirs.id, completed, NOW + 10);
      const videos = (ds: ReadonlyArray<{ videoId: string }>) => ds.map((d) => d.videoId);
      // Each team's earliest first, then the next of each.
      expect(videos(await store.claimDeliveries(3, 1, NOW + 20))).toEqual([mine[0]!.id, theirs.id, mine[1]!.id]);
      // `t1` has one in flight already: with a share of two, one more of its own, however many are due.
      expect(videos(await store.claimDeliveries(10, 60_000, NOW + 30, { perTeam: 2, busy: { t1: 1 } }))).toEqual([theirs.id, mine[0]!.id]);
      expect(videos(await store.claimDeliveries(10, 60_000, NOW + 40, { perTeam: 2, busy: { t1: 2 } }))).toEqual([]);
      expect(videos(await store.claimDeliveries(10, 60_000, NOW + 50, { perTeam: 2, busy: {} }))).toEqual([mine[1]!.id, mine[2]!.id]);
    });
  });

  it('tells its listeners of each revocation, policy change and delete once the call has returned, and of nothing that changed nothing', async () => {
    const heard: StoreChange[] = [];
    // A `reset` (the shared store's listening connection coming up) may arrive at any moment: not a change.
    const unsubscribe = store.onChange((c) => c.kind !== 'reset' && heard.push(c));
    const p = principal();
    await store.createTeam({ id: 't1', name: null, quota: {} }, NOW);
    await store.createKey({ id: 'k1', teamId: 't1', name: null, prefix: 'gvk_x', hash: 'h1', quota: {}, createdAt: NOW / 1000, expiresAt: null });
    const [done, pending] = [newJob(p), newJob(p)];
    await store.admitJob(p, done, NOW);
    await store.admitJob(p, pending, NOW);
    await store.activateJob(done.id, 'up', 'fp', { status: 'completed', progress: 100, error: null }, NOW, 'upstream-a');
    expect(heard).toEqual([]);

    const steps: Array<[() => Promise<unknown>, StoreChange | null]> = [
      [() => store.revokeKey('k1', NOW), { kind: 'key', keyId: 'k1' }],
      [() => store.revokeKey('k-none', NOW), null],
      [() => store.updateTeam('t1', { quota: { max_concurrent_jobs: 1 } }), { kind: 'team', teamId: 't1' }],
      [() => store.updateTeam('t-none', { quota: {} }), null],
      [() => store.deleteJob('t1', done.id, NOW, 'settle'), { kind: 'job', jobId: done.id, deleted: true }],
      [() => store.deleteJob('t1', done.id, NOW, 'settle'), null],
      [() => store.abandonJob(pending.id, NOW), { kind: 'job', jobId: pending.id, deleted: false }],
      [() => store.abandonJob(pending.id, NOW), null],
      [() => store.deleteTeam('t1', NOW), { kind: 'team', teamId: 't1' }],
      [() => store.deleteTeam('t1', NOW), null],
    ];
    for (const [step, change] of steps) {
      heard.length = 0;
      await step();
      expect(heard).toEqual(change ? [change] : []);
    }
    unsubscribe();
    await store.createTeam({ id: 't3', name: null, quota: {} }, NOW);
    await store.updateTeam('t3', { name: 'x' });
    expect(heard).toEqual([]);
  });

  it("hands out due jobs in turns across teams, never one twice while claimed, freed by its next check's record or when the lease runs out", async () => {
    const [p1, p2] = [principal(), principal({ teamId: 't2', keyId: 'k2' })];
    const mine = [newJob(p1), newJob(p1), newJob(p1), newJob(p1)];
    const theirs = newJob(p2);
    for (const [i, [p, j]] of [...mine.map((j) => [p1, j] as const), [p2, theirs] as const].entries()) {
      await store.admitJob(p, j, NOW);
      await store.activateJob(j.id, `up-${i}`, 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'upstream-a');
    }
    await store.scheduleChecks([...mine.map((j, i) => ({ id: j.id, inMs: 100 + i, checks: 0 })), { id: theirs.id, inMs: 200, checks: 0 }], NOW);
    const ids = (js: ReadonlyArray<{ id: string }>) => js.map((j) => j.id);
    const due = { horizonMs: 0, pendingGraceMs: 60_000 };
    expect(await store.claimDueJobs(10, 60_000, NOW + 99, due)).toEqual([]);
    // Within the horizon counts as due.
    expect(ids(await store.claimDueJobs(1, 1, NOW + 99, { ...due, horizonMs: 1 }))).toEqual([mine[0]!.id]);
    // Each team's most overdue first, then the next of each: one team's many never starve another's few.
    expect(ids(await store.claimDueJobs(3, 60_000, NOW + 300, due))).toEqual(ids([mine[0]!, theirs, mine[1]!]));
    expect(ids(await store.claimDueJobs(10, 60_000, NOW + 310, due))).toEqual(ids([mine[2]!, mine[3]!]));
    expect(await store.claimDueJobs(10, 60_000, NOW + 320, due)).toEqual([]);

    await store.scheduleChecks([{ id: mine[1]!.id, inMs: 0, checks: 1 }], NOW + 330);
    expect(ids(await store.claimDueJobs(10, 60_000, NOW + 330, due))).toEqual([mine[1]!.id]);
    // The first claim's lease ran out; the later ones' did not.
    expect(ids(await store.claimDueJobs(10, 60_000, NOW + 60_300, due))).toEqual(ids([mine[0]!, theirs]));
    // An ended job is not active, claimed or not.
    await store.updateJob(mine[2]!.id, { status: 'completed', progress: 100, error: null }, NOW + 60_320);
    expect(ids(await store.claimDueJobs(10, 60_000, NOW + 200_000, due))).toEqual(ids([mine[0]!, theirs, mine[3]!, mine[1]!]));

    // A create still without its upstream id is handed out once it is older than the grace (its process may have died).
    await store.scheduleChecks([...mine, theirs].map((j) => ({ id: j.id, inMs: 3_600_000, checks: 0 })), NOW + 200_000);
    const pending = newJob(p1);
    await store.admitJob(p1, pending, NOW + 300_000);
    expect(await store.claimDueJobs(10, 60_000, NOW + 359_000, due)).toEqual([]);
    expect(ids(await store.claimDueJobs(10, 60_000, NOW + 361_000, due))).toEqual([pending.id]);
  });

  describe('Idempotency-Key', () => {
    const LEASE = 10_000;
    const TTL = 86_400_000;
    const claimOf = (over: Partial<IdempotencyClaimRequest> = {}): IdempotencyClaimRequest => ({
      teamId: 't1', key: 'key-1', fingerprint: 'fp-a', jobId: `video_idem_${++claims}`, holder: `holder-${claims}`, leaseMs: LEASE, ttlMs: TTL, ...over,
    });
    let claims = 0;
    const error = { status: 502, type: 'upstream_error', code: 'upstream_error', message: 'm', param: null, headers: { 'x-should-retry': 'false' } };

    it('the first claim holds the key under its job id; a repeat while it works is in progress, another request a mismatch', async () => {
      const first = claimOf();
      expect(await store.claimIdempotencyKey(first, NOW)).toEqual({ kind: 'claimed', jobId: first.jobId });
      expect(await store.claimIdempotencyKey(claimOf(), NOW + 1)).toEqual({ kind: 'in_progress' });
      expect(await store.claimIdempotencyKey(claimOf({ fingerprint: 'fp-b' }), NOW + 2)).toEqual({ kind: 'mismatch' });
      // Per team: the same key of another team is another key.
      const other = claimOf({ teamId: 't2' });
      expect(await store.claimIdempotencyKey(other, NOW + 3)).toEqual({ kind: 'claimed', jobId: other.jobId });
    });

    it('keeps the answer its holder gives, for every repeat until it expires; nobody else can answer or renew', async () => {
      const first = claimOf();
      await store.claimIdempotencyKey(first, NOW);
      expect(await store.answerIdempotencyKey('t1', 'key-1', 'someone-else', { kind: 'video', jobId: 'video_x' })).toBe(false);
      expect(await store.renewIdempotencyKey('t1', 'key-1', 'someone-else', LEASE, NOW)).toBe(false);
      expect(await store.answerIdempotencyKey('t1', 'key-1', first.holder, { kind: 'video', jobId: first.jobId })).toBe(true);
      expect(await store.claimIdempotencyKey(claimOf(), NOW + LEASE * 3)).toEqual({ kind: 'answered', answer: { kind: 'video', jobId: first.jobId } });
      expect(await store.claimIdempotencyKey(claimOf({ fingerprint: 'fp-b' }), NOW + 5)).toEqual({ kind: 'mismatch' });
      // Answered once: neither the holder's second answer nor a renewal changes it.
      expect(await store.answerIdempotencyKey('t1', 'key-1', first.holder, { kind: 'error', error })).toBe(false);
      expect(await store.renewIdempotencyKey('t1', 'key-1', first.holder, LEASE, NOW)).toBe(false);

      const failed = claimOf({ key: 'key-2' });
      await store.claimIdempotencyKey(failed, NOW);
      await store.answerIdempotencyKey('t1', 'key-2', failed.holder, { kind: 'error', error });
      expect(await store.claimIdempotencyKey(claimOf({ key: 'key-2' }), NOW + 1)).toEqual({ kind: 'answered', answer: { kind: 'error', error } });

      // Past its time the key is new again, whatever request comes with it.
      const later = claimOf({ fingerprint: 'fp-c' });
      expect(await store.claimIdempotencyKey(later, NOW + TTL)).toEqual({ kind: 'claimed', jobId: later.jobId });
    });

    it('a key released by its holder (its request changed nothing) may be claimed again at once', async () => {
      const first = claimOf();
      await store.claimIdempotencyKey(first, NOW);
      await store.releaseIdempotencyKey('t1', 'key-1', 'someone-else');
      expect(await store.claimIdempotencyKey(claimOf(), NOW + 1)).toEqual({ kind: 'in_progress' });
      await store.releaseIdempotencyKey('t1', 'key-1', first.holder);
      const again = claimOf({ fingerprint: 'fp-b' });
      expect(await store.claimIdempotencyKey(again, NOW + 2)).toEqual({ kind: 'claimed', jobId: again.jobId });
    });

    it('a holder that renews keeps the key; one that lets its lease run out loses it to a repeat, which learns what became of its job', async () => {
      const p = principal();
      const cases = [
        { key: 'never-admitted', admit: false, place: false, orphan: 'absent' },
        { key: 'admitted', admit: true, place: false, orphan: 'unplaced' },
        { key: 'placed', admit: true, place: true, orphan: 'placed' },
      ] as const;
      for (const c of cases) {
        const first = claimOf({ key: c.key });
        await store.claimIdempotencyKey(first, NOW);
        if (c.admit) await store.admitJob(p, { ...newJob(p), id: first.jobId }, NOW);
        if (c.place) await store.activateJob(first.jobId, 'up-1', 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'upstream-a');
        expect(await store.renewIdempotencyKey('t1', c.key, first.holder, LEASE, NOW + LEASE - 1)).toBe(true);
        expect(await store.claimIdempotencyKey(claimOf({ key: c.key }), NOW + LEASE + 1)).toEqual({ kind: 'in_progress' });
        const repeat = claimOf({ key: c.key });
        expect(await store.claimIdempotencyKey(repeat, NOW + 2 * LEASE)).toEqual({ kind: 'claimed', jobId: first.jobId, orphan: c.orphan });
        // The key is the repeat's now: the first holder can no longer renew or answer it, the repeat can.
        expect(await store.renewIdempotencyKey('t1', c.key, first.holder, LEASE, NOW + 2 * LEASE)).toBe(false);
        expect(await store.answerIdempotencyKey('t1', c.key, first.holder, { kind: 'video', jobId: first.jobId })).toBe(false);
        expect(await store.claimIdempotencyKey(claimOf({ key: c.key }), NOW + 2 * LEASE + 1)).toEqual({ kind: 'in_progress' });
        expect(await store.answerIdempotencyKey('t1', c.key, repeat.holder, { kind: 'video', jobId: first.jobId })).toBe(true);
      }
    });

    it('of many claims of one new key at once, exactly one holds it', async () => {
      const results = await Promise.all(Array.from({ length: 12 }, () => store.claimIdempotencyKey(claimOf({ key: 'burst' }), NOW)));
      expect(results.filter((r) => r.kind === 'claimed')).toHaveLength(1);
      expect(results.filter((r) => r.kind === 'in_progress')).toHaveLength(11);
    });

    it('sweeps keys past their time, answered or not, in batches, and leaves the others', async () => {
      for (const [i, key] of ['old-1', 'old-2', 'old-3'].entries()) {
        const c = claimOf({ key });
        await store.claimIdempotencyKey(c, NOW + i);
        if (i === 0) await store.answerIdempotencyKey('t1', key, c.holder, { kind: 'video', jobId: c.jobId });
      }
      await store.claimIdempotencyKey(claimOf({ key: 'young' }), NOW + TTL);
      expect(await store.sweepIdempotencyKeys(NOW + TTL + 10, 2)).toBe(2);
      expect(await store.sweepIdempotencyKeys(NOW + TTL + 10, 2)).toBe(1);
      expect(await store.sweepIdempotencyKeys(NOW + TTL + 10, 2)).toBe(0);
      expect(await store.claimIdempotencyKey(claimOf({ key: 'young' }), NOW + TTL + 10)).toEqual({ kind: 'in_progress' });
    });
  });

  describe('money (§10)', () => {
    const priced = (p: Principal, seconds: number, estimateMicros: number | null) => ({ ...newJob(p, seconds), estimateMicros });
    const queued = { status: 'queued' as const, progress: 0, error: null };
    const done = (costMicros?: number) => ({ status: 'completed' as const, progress: 100, error: null, ...(costMicros !== undefined ? { costMicros } : {}) });
    const failed = { status: 'failed' as const, progress: 5, error: { code: 'x', message: 'y' } };

    it('reserves the estimate with the seconds and refuses past a dollar budget of key or team, reserving nothing', async () => {
      const p = principal({ teamPolicy: { usd_per_day: 1 }, keyPolicy: { usd_per_month: 0.9 } });
      expect((await store.admitJob(p, priced(p, 4, 400_000), NOW)).ok).toBe(true);
      expect((await store.admitJob(p, priced(p, 4, 400_000), NOW)).ok).toBe(true);
      expect(await store.admitJob(p, priced(p, 4, 400_000), NOW)).toEqual({
        ok: false,
        refusal: { kind: 'usd_month', scope: 'key', limit: 900_000, used: 800_000, requested: 400_000 },
      });
      const other = principal({ keyId: 'k2', teamPolicy: { usd_per_day: 1 } });
      expect(await store.admitJob(other, priced(other, 4, 200_001), NOW)).toEqual({
        ok: false,
        refusal: { kind: 'usd_day', scope: 'team', limit: 1_000_000, used: 800_000, requested: 200_001 },
      });
      // Exactly what is left fits.
      expect((await store.admitJob(other, priced(other, 4, 200_000), NOW)).ok).toBe(true);
      expect((await store.usage('t1', NOW, 1)).day).toMatchObject({ video_seconds: 12, usd: 1, usd_reserved: 1 });
      expect((await store.admitJob(other, priced(other, 1, 1), NOW)).ok).toBe(false);
    });

    it("settles at the upstream's own figure, else at the price of the upstream that took the job; refunds a failure; once each", async () => {
      const p = principal();
      const jobs = [priced(p, 5, 700_000), priced(p, 5, 700_000), priced(p, 5, 700_000), priced(p, 5, null), priced(p, 5, null)];
      for (const j of jobs) {
        await store.admitJob(p, j, NOW);
        await store.activateJob(j.id, `up-${j.id}`, 'fp', queued, NOW, 'upstream-a', j.estimateMicros === null ? null : 300_000);
      }
      expect((await store.usage('t1', NOW, 1)).day).toMatchObject({ usd: 2.1, usd_reserved: 2.1 });
      const [a, b, c, d, e] = jobs.map((j) => j.id) as [string, string, string, string, string];
      for (let i = 0; i < 2; i++) {
        await store.updateJob(a, done(650_000), NOW);
        await store.updateJob(b, done(), NOW);
        await store.updateJob(c, failed, NOW);
        await store.updateJob(d, done(120_000), NOW);
        await store.updateJob(e, done(), NOW);
      }
      const cost = async (id: string) => {
        const j = await store.getJob('t1', id);
        return [j?.costMicros, j?.costSource];
      };
      expect(await cost(a)).toEqual([650_000, 'upstream']);
      expect(await cost(b)).toEqual([300_000, 'price']);
      expect(await cost(c)).toEqual([0, null]);
      expect(await cost(d)).toEqual([120_000, 'upstream']);
      // Unknown, never $0.
      expect(await cost(e)).toEqual([null, null]);
      const u = await store.usage('t1', NOW, 3);
      expect(u.day).toMatchObject({ video_seconds: 20, usd: 1.07, usd_reserved: 0 });
      expect(u.month).toMatchObject({ usd: 1.07, usd_reserved: 0 });
      expect(u.daily.at(-1)).toMatchObject({ video_seconds: 20, usd: 1.07 });
      expect(await store.usageByModel('t1', NOW)).toEqual([
        { model: 'grok-video-3', day: { video_seconds: 20, video_seconds_reserved: 0, usd: 1.07, usd_reserved: 0, jobs: 4 }, month: { video_seconds: 20, video_seconds_reserved: 0, usd: 1.07, usd_reserved: 0, jobs: 4 } },
      ]);
    });

    it('queues a budget alert once per key, and only for an enabled endpoint subscribed to budget.threshold', async () => {
      const alert = { key: 'budget.threshold:t1:day:2026-11-26:80', data: { team: 't1', period: 'day', percent: 80 } };
      const endpoint = (events: WebhookEventType[], enabled = true) => store.putWebhook('t1', { url: 'https://hooks.example/t1', events, enabled }, 'whsec_test', NOW);
      expect(await store.enqueueBudgetAlert('t1', alert, NOW)).toBe(false);
      await endpoint(['video.completed', 'video.failed']);
      expect(await store.enqueueBudgetAlert('t1', alert, NOW)).toBe(false);
      await endpoint(['budget.threshold'], false);
      expect(await store.enqueueBudgetAlert('t1', alert, NOW)).toBe(false);
      await endpoint(['budget.threshold']);
      expect(await store.enqueueBudgetAlert('t1', alert, NOW)).toBe(true);
      expect(await store.enqueueBudgetAlert('t1', alert, NOW)).toBe(false);
      expect(await store.enqueueBudgetAlert('t1', { ...alert, key: 'budget.threshold:t1:day:2026-11-26:100' }, NOW)).toBe(true);
      const listed = await store.listDeliveries('t1', 10);
      expect(listed.map((d) => [d.type, d.data, d.status])).toEqual([
        ['budget.threshold', alert.data, 'pending'],
        ['budget.threshold', alert.data, 'pending'],
      ]);
      const [claimed] = await store.claimDeliveries(1, 60_000, NOW);
      expect(claimed).toMatchObject({ type: 'budget.threshold', data: alert.data });
    });

    it('an abandon gives the estimate back and a late activation takes it again; a delete settles at the price or refunds', async () => {
      const p = principal();
      const late = priced(p, 3, 500_000);
      await store.admitJob(p, late, NOW);
      await store.abandonJob(late.id, NOW);
      expect((await store.usage('t1', NOW, 1)).day).toMatchObject({ usd: 0, usd_reserved: 0 });
      await store.activateJob(late.id, 'up-late', 'fp', queued, NOW, 'upstream-a', 400_000);
      expect((await store.usage('t1', NOW, 1)).day).toMatchObject({ usd: 0.5, usd_reserved: 0.5 });
      await store.updateJob(late.id, done(), NOW);
      expect(await store.getJob('t1', late.id)).toMatchObject({ costMicros: 400_000, costSource: 'price' });

      const running = priced(p, 3, 200_000);
      await store.admitJob(p, running, NOW);
      await store.activateJob(running.id, 'up-running', 'fp', queued, NOW, 'upstream-a', 150_000);
      await store.deleteJob('t1', running.id, NOW, 'settle');

      const pending = priced(p, 3, 300_000);
      await store.admitJob(p, pending, NOW);
      await store.deleteJob('t1', pending.id, NOW, 'refund');
      expect((await store.usage('t1', NOW, 1)).day).toMatchObject({ usd: 0.55, usd_reserved: 0 });
      // The upstream took the deleted create after all: it is charged at that upstream's price.
      await store.activateJob(pending.id, 'up-pending', 'fp', queued, NOW, 'upstream-a', 250_000);
      expect((await store.usage('t1', NOW, 1)).day).toMatchObject({ video_seconds: 9, usd: 0.8, usd_reserved: 0 });
      const byModel = await store.usageByModel('t1', NOW);
      expect(byModel.map((m) => [m.day.usd, m.day.jobs])).toEqual([[0.8, 3]]);
    });
  });

  it('survives being reopened', async () => {
    const p = principal();
    const j = newJob(p);
    await store.admitJob(p, j, NOW);
    await store.close();
    store = await home.open();
    expect((await store.getJob('t1', j.id))?.seconds).toBe(5);
    expect((await store.usage('t1', NOW, 1)).activeJobs).toBe(1);
  });
});
