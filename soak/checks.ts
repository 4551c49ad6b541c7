/**
 * What must hold after the soak, read from three independent places: the gateway's database (its jobs and
 * idempotency keys), the simulator's own list of the tasks it was asked to make (GET /_simulator/tasks), and
 * what the clients were told. Each check says whether it held and, if not, which videos or keys broke it.
 */
import pg from 'pg';
import { TASKS_PATH } from '../src/simulator/shared.js';
import type { KeyRecord } from './clients.js';
import { sleep, type Traffic } from './http.js';

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

interface JobRow {
  id: string;
  team_id: string;
  upstream_id: string | null;
  prompt: string;
  seconds: number;
  status: string;
  charge: string;
  charge_day: string;
  charge_month: string;
  error: { code?: string } | null;
  deleted_at: string | null;
}

interface SimTask {
  id: string;
  prompt: string | null;
  seconds: string;
  status: string;
  created_at_ms: number;
}

interface Usage {
  day: { start: string; video_seconds: number; video_seconds_reserved: number };
  month: { start: string; video_seconds: number; video_seconds_reserved: number };
  active_jobs: number;
}

export interface CheckInputs {
  readonly databaseUrl: string;
  readonly simulatorUrl: string;
  readonly simulatorKey: string;
  readonly adminToken: string;
  readonly teams: readonly string[];
  readonly records: readonly KeyRecord[];
  readonly traffic: Traffic;
  /** Epoch ms when the SIGKILLed replica was seen gone: an upstream create it had in flight may leave a task no one recorded. */
  readonly killedAtMs: number | undefined;
  /** How long the simulator holds a create's answer: the window in which a kill cuts a create off. */
  readonly createDelayMs: number;
}

const live = (j: JobRow) => j.deleted_at === null;
const ended = (status: string) => status === 'completed' || status === 'failed';
const list = (items: readonly string[], max = 5) => (items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} … (+${items.length - max})`);
/** The key a soak prompt was made for (`soak video <key>[ mark]`). */
const keyOf = (prompt: string | null) => /^soak video (\S+)/.exec(prompt ?? '')?.[1];

async function query<T>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

const jobsOf = (url: string) =>
  query<JobRow>(url, 'SELECT id, team_id, upstream_id, prompt, seconds, status, charge, charge_day, charge_month, error, deleted_at FROM jobs ORDER BY seq');

/** Waits until every live job in the store has ended (the reconciler finishes the ones nobody polls), or the deadline. */
export async function waitForJobsToEnd(databaseUrl: string, deadlineMs: number): Promise<number> {
  const until = performance.now() + deadlineMs;
  for (;;) {
    const open = (await jobsOf(databaseUrl)).filter((j) => live(j) && !ended(j.status)).length;
    if (open === 0 || performance.now() > until) return open;
    await sleep(1_000);
  }
}

export async function runChecks(inp: CheckInputs): Promise<Check[]> {
  const jobs = await jobsOf(inp.databaseUrl);
  const liveJobs = jobs.filter(live);
  const res = await fetch(`${inp.simulatorUrl}${TASKS_PATH}`, { headers: { authorization: `Bearer ${inp.simulatorKey}` } });
  const tasks = ((await res.json()) as { data: SimTask[] }).data;
  const byKey = new Map(inp.records.map((r) => [r.key, r]));
  const checks: Check[] = [];
  const check = (name: string, bad: readonly string[], okDetail: string) =>
    checks.push({ name, ok: bad.length === 0, detail: bad.length === 0 ? okDetail : `${bad.length}: ${list(bad)}` });

  // 1. Every admitted video ended, none lost: the store's live jobs are all completed or failed, each as its prompt
  // asked (no gateway-made failure such as upstream_lost or expired), and every video a client was given ended so.
  const open = liveJobs.filter((j) => !ended(j.status));
  check('every admitted video ended (store)', open.map((j) => `${j.id} ${j.status}`), `${liveJobs.length} jobs: ${liveJobs.filter((j) => j.status === 'completed').length} completed, ${liveJobs.filter((j) => j.status === 'failed').length} failed`);
  const wrongEnd = liveJobs.filter((j) => ended(j.status) && (j.status === 'failed') !== byKey.get(keyOf(j.prompt) ?? '')?.asksFailure);
  check('each ended as its upstream task did (no job failed by the gateway)', wrongEnd.map((j) => `${j.id} ${j.status} ${j.error?.code ?? ''}`), 'failed ⇔ the prompt asked the simulator for a failure');
  const given = inp.records.filter((r) => r.outcome === 'video');
  const notFollowed = given.filter((r) => r.followed !== (r.asksFailure ? 'failed' : 'completed'));
  check('every video a client was given ended, none lost (client polls)', notFollowed.map((r) => `${r.key} ${r.followed ?? 'not followed'}`), `${given.length} videos followed to their end`);
  const badDownloads = given.filter((r) => r.followed === 'completed' && (r.downloaded !== true || r.downloadRefusals.length > 0));
  check(
    'every completed video downloaded whole, never refused once completed',
    badDownloads.map((r) => `${r.key}${r.downloadRefusals.length ? ` (${r.downloadRefusals.join(', ')})` : ''}`),
    `${given.filter((r) => r.downloaded).length} downloads, bytes checked`,
  );

  // 2. Every live job is a video its client was told of: none billed that its client does not know.
  const answered = new Set(given.flatMap((r) => [...r.videoIds]));
  const untold = liveJobs.filter((j) => !answered.has(j.id));
  check('every recorded video was answered to its client', untold.map((j) => `${j.id} (key ${keyOf(j.prompt)}: ${list(byKey.get(keyOf(j.prompt) ?? '')?.answers ?? [], 3)})`), `${liveJobs.length} of ${liveJobs.length}`);

  // 3. One job per create: one video id per key across every answer, one live job and one upstream task per prompt.
  const twoIds = inp.records.filter((r) => r.videoIds.size > 1);
  const perPrompt = (prompts: readonly (string | null)[]) => {
    const n = new Map<string, number>();
    for (const p of prompts) n.set(p ?? '', (n.get(p ?? '') ?? 0) + 1);
    return [...n].filter(([, c]) => c > 1).map(([p, c]) => `${keyOf(p)} ×${c}`);
  };
  const replays = inp.records.reduce((s, r) => s + r.replays, 0);
  check(
    'no create started two jobs (one video per key, one job and one upstream task per create)',
    [...twoIds.map((r) => `${r.key}: ${[...r.videoIds].join(' ')}`), ...perPrompt(liveJobs.map((j) => j.prompt)).map((p) => `jobs ${p}`), ...perPrompt(tasks.map((t) => t.prompt)).map((p) => `tasks ${p}`)],
    `${inp.records.length} keys, ${tasks.length} upstream tasks, ${replays} deliberate repeats`,
  );

  // 4. No orphan: every upstream task is a live job's. The one exception the contract allows is a create cut off
  // by the SIGKILL while the upstream held it: nobody can know of that task (the upstream takes no key), its job
  // was refunded and its key answers create_outcome_unknown. Those are counted apart, not passed over.
  const recorded = new Set(liveJobs.map((j) => j.upstream_id));
  const orphans = tasks.filter((t) => !recorded.has(t.id));
  const cutByKill = (t: SimTask) => {
    if (inp.killedAtMs === undefined) return false;
    // Sent before the replica died, answered after: within the simulator's create delay (and some slack) of its end.
    const sinceMs = inp.killedAtMs - t.created_at_ms;
    const refunded = jobs.some((j) => j.prompt === t.prompt && j.charge === 'refunded' && j.upstream_id === null);
    return sinceMs >= 0 && sinceMs <= inp.createDelayMs + 2_000 && refunded;
  };
  const explained = orphans.filter(cutByKill);
  check('no orphan upstream task (each belongs to a recorded job)', orphans.filter((t) => !cutByKill(t)).map((t) => `${t.id} (key ${keyOf(t.prompt)})`), `${tasks.length - orphans.length} of ${tasks.length} tasks recorded`);
  checks.push({
    name: 'upstream tasks cut off by the SIGKILL (known limit, refunded)',
    ok: true,
    detail: explained.length === 0 ? 'none' : `${explained.length}: ${list(explained.map((t) => `${t.id} (key ${keyOf(t.prompt)}: ${list(byKey.get(keyOf(t.prompt) ?? '')?.answers ?? [], 3)})`))}`,
  });

  // 5. Usage: each team's charged seconds are exactly those of its completed videos, nothing still reserved.
  const usageBad: string[] = [];
  const usageOk: string[] = [];
  for (const team of inp.teams) {
    const a = await inp.traffic.call('admin', `/admin/teams/${team}/usage`, { headers: { authorization: `Bearer ${inp.adminToken}` } });
    if (a.status !== 200) {
      usageBad.push(`${team}: usage answered ${a.status}`);
      continue;
    }
    const u = a.json<Usage>();
    const completed = liveJobs.filter((j) => j.team_id === team && j.status === 'completed');
    const storeSeconds = completed.reduce((s, j) => s + j.seconds, 0);
    // Compared bucket by bucket, so that a run across a UTC midnight (or a month's end) is judged right.
    const todaySeconds = completed.filter((j) => j.charge_day === u.day.start).reduce((s, j) => s + j.seconds, 0);
    const monthSeconds = completed.filter((j) => j.charge_month === u.month.start).reduce((s, j) => s + j.seconds, 0);
    const clientSeconds = given.filter((r) => r.team === team && r.followed === 'completed').reduce((s, r) => s + r.seconds, 0);
    const facts = `${team}: month ${u.month.video_seconds} s, day ${u.day.video_seconds} s, completed ${storeSeconds} s (store) / ${clientSeconds} s (clients), reserved ${u.month.video_seconds_reserved}, active ${u.active_jobs}`;
    const ok =
      storeSeconds === clientSeconds && u.month.video_seconds === monthSeconds && u.day.video_seconds === todaySeconds &&
      u.month.video_seconds_reserved === 0 && u.day.video_seconds_reserved === 0 && u.active_jobs === 0;
    (ok ? usageOk : usageBad).push(facts);
  }
  checks.push({ name: "each team's usage = seconds of its completed videos, reserved 0", ok: usageBad.length === 0, detail: [...usageBad, ...usageOk].join('; ') });
  return checks;
}
