/**
 * Child processes of the bench and what is measured of them from outside: RSS (VmRSS/VmHWM from
 * /proc/<pid>/status, the peak reset through /proc/<pid>/clear_refs) and CPU time (/proc/<pid>/stat).
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import ts from 'typescript';

export const ROOT = join(dirname(new URL(import.meta.url).pathname), '..');
export const OUT = join(ROOT, 'bench', 'out');

const MIB = 1024 * 1024;
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

const children = new Set<ChildProcess>();
/** Last resort: nothing the bench started outlives it, whatever way it ends. */
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
// A signal would end the process without 'exit' handlers: turn it into an exit (Ctrl-C, CI's timeout).
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) process.on(signal, () => process.exit(code));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Bytes resident now and at peak (since the last resetPeak), in MiB. */
export function memory(pid: number): { rssMb: number; hwmMb: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0); false where the kernel or permissions refuse. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** User + system CPU time the process has used so far, in ms. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5); the slice starts at field 3.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** CPU time the whole machine has been busy (all cores, steal included), in ms. */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  return (((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 1000) / CLK_TCK;
}

/** CPU time of this process and every child the bench started and that still runs, in ms. */
export function ourCpuMs(): number {
  const self = process.cpuUsage();
  let ms = (self.user + self.system) / 1000;
  for (const c of children) {
    if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
    try {
      ms += cpuMs(c.pid);
    } catch {
      // Exited between the check and the read.
    }
  }
  return ms;
}

/**
 * How much of the machine other processes used over a stretch of the bench, in % of all cores: the load
 * generator shares the machine with the processes it measures, and anything else running skews them all.
 */
export class BackgroundLoad {
  private readonly wall = performance.now();
  private readonly busy = machineBusyMs();
  private readonly ours = ourCpuMs();

  constructor(private readonly cores: number) {}

  pct(): number {
    const wallMs = performance.now() - this.wall;
    const other = machineBusyMs() - this.busy - (ourCpuMs() - this.ours);
    return Math.max(0, (100 * other) / (wallMs * this.cores));
  }
}

/**
 * Peak RSS of a process over a stretch of the bench: VmHWM after a reset, backed by sampling every 10 ms
 * in case the reset is refused. `growthMb` is the peak above the RSS at start.
 */
export class MemoryWatch {
  private readonly timer: NodeJS.Timeout;
  private readonly startRss: number;
  private sampledPeak: number;
  private readonly resetOk: boolean;

  constructor(private readonly pid: number) {
    this.resetOk = resetPeak(pid);
    this.startRss = memory(pid).rssMb;
    this.sampledPeak = this.startRss;
    this.timer = setInterval(() => {
      try {
        this.sampledPeak = Math.max(this.sampledPeak, memory(pid).rssMb);
      } catch {
        // The process is gone; stop() reports what was seen.
      }
    }, 10);
  }

  stop(): { startMb: number; peakMb: number; growthMb: number } {
    clearInterval(this.timer);
    let peak = this.sampledPeak;
    try {
      const m = memory(this.pid);
      peak = Math.max(peak, m.rssMb, this.resetOk ? m.hwmMb : 0);
    } catch {
      // Keep the sampled peak.
    }
    return { startMb: this.startRss, peakMb: peak, growthMb: peak - this.startRss };
  }
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly url: string;
  readonly proc: ChildProcess;
  stop(): Promise<void>;
}

/** Makes the process one the bench (or the soak) stops whatever way it ends. */
export function track(proc: ChildProcess): void {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
}

async function stopChild(proc: ChildProcess, graceMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Transpiles one self-contained bench file to plain ESM, so that its process runs without any loader. */
export function transpile(file: string): string {
  const src = readFileSync(join(ROOT, 'bench', file), 'utf8');
  const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  mkdirSync(OUT, { recursive: true });
  const out = join(OUT, file.replace(/\.ts$/, '.mjs'));
  writeFileSync(out, js);
  return out;
}

/** Forks a bench helper that reports `{ ready, port }` over IPC; its rpc() talks to it over the same channel. */
export async function forkHelper(
  name: string,
  modulePath: string,
  env: Record<string, string>,
  execArgv: string[] = [],
): Promise<Child & { rpc<T>(op: string, args?: Record<string, unknown>): Promise<T> }> {
  const proc = fork(modulePath, [], { cwd: ROOT, env: { ...cleanEnv(), ...env }, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  track(proc);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 15 s`)), 15_000);
    proc.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
    proc.on('message', (m: { ready?: boolean; port?: number }) => {
      if (m.ready) {
        clearTimeout(timer);
        resolve(m.port as number);
      }
    });
  });
  let next = 0;
  const pending = new Map<number, (v: unknown) => void>();
  proc.on('message', (m: { rpc?: number; result?: unknown }) => {
    if (m.rpc !== undefined) {
      pending.get(m.rpc)?.(m.result);
      pending.delete(m.rpc);
    }
  });
  return {
    name,
    pid: proc.pid as number,
    url: `http://127.0.0.1:${port}`,
    proc,
    stop: () => stopChild(proc, 3_000),
    rpc<T>(op: string, args: Record<string, unknown> = {}) {
      const rpc = ++next;
      return new Promise<T>((resolve) => {
        pending.set(rpc, resolve as (v: unknown) => void);
        proc.send({ rpc, op, ...args });
      });
    },
  };
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

/** The built gateway; BENCH_GATEWAY_ENTRY points the bench at another build (an A/B experiment). */
export const GATEWAY_ENTRY = process.env.BENCH_GATEWAY_ENTRY ?? join(ROOT, 'dist', 'main.js');

export interface GatewayChild extends Child {
  readonly logFile: string;
}

/**
 * Starts the built gateway (`dist/main.js`) as production would, and waits until /healthz answers. `port`: a
 * given one (a replica restarted where its clients expect it); `outDir`: where its log goes (bench/out).
 */
export async function startGatewayProcess(opts: {
  name: string;
  env: Record<string, string>;
  nodeArgs?: string[];
  port?: number;
  outDir?: string;
  /** Another build than GATEWAY_ENTRY (`--only=s2` runs two side by side). */
  entry?: string;
}): Promise<GatewayChild> {
  const port = opts.port ?? (await freePort());
  const outDir = opts.outDir ?? OUT;
  mkdirSync(outDir, { recursive: true });
  const logFile = join(outDir, `${opts.name}.log`);
  const fd = openSync(logFile, 'w');
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.entry ?? GATEWAY_ENTRY], {
    cwd: ROOT,
    env: { ...cleanEnv(), ...opts.env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  track(proc);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${opts.name} exited with ${proc.exitCode}:\n${readFileSync(logFile, 'utf8')}`);
    try {
      const res = await fetch(`${url}/healthz`);
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`${opts.name} did not become healthy:\n${readFileSync(logFile, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // The deadline is the gateway's own drain; SIGKILL only if that fails too (a CPU profile would be lost).
  return { name: opts.name, pid: proc.pid as number, url, proc, logFile, stop: () => stopChild(proc, 15_000) };
}

export const mib = (bytes: number) => bytes / MIB;
