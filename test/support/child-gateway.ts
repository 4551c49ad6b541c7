import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ADMIN_TOKEN, UPSTREAM_KEY } from './harness.js';

export interface ChildGateway {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the process wrote, stdout and stderr. */
  readonly output: () => string;
  /** Peak resident memory of the process so far, from the kernel (VmHWM), in bytes. */
  peakRss(): number;
  rss(): number;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const statusField = (pid: number, field: string) => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
};

/** Runs src/main.ts in its own process, as `npm start` would, so its memory and signals are its own. */
export function spawnGateway(env: Record<string, string>): Promise<ChildGateway> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      // Never leave a half-started gateway behind a failed test.
      child.kill('SIGKILL');
      reject(new Error(`gateway did not start:\n${out}`));
    }, 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:\/\/[^"]+)".*"msg":"gateway listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1]!,
          child,
          output: () => out,
          peakRss: () => statusField(child.pid!, 'VmHWM'),
          rss: () => statusField(child.pid!, 'VmRSS'),
          stop: (signal = 'SIGTERM') => {
            child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`gateway exited with ${code}:\n${out}`)));
  });
}

/**
 * A replica of the replica suites: on the shared database and the suite's simulator, every poll an upstream
 * call (no status cache) and no tracker of its own, so that what a test sees comes from its own requests.
 */
export const replicaEnv = (databaseUrl: string, upstreamUrl: string, extra: Record<string, string> = {}): Record<string, string> => ({
  DATABASE_URL: databaseUrl,
  UPSTREAM_BASE_URL: upstreamUrl,
  UPSTREAM_API_KEY: UPSTREAM_KEY,
  ADMIN_TOKEN,
  STATUS_CACHE_MS: '0',
  RECONCILE_INTERVAL_MS: '0',
  ...extra,
});
