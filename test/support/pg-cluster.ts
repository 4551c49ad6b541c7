import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * A throwaway PostgreSQL cluster on a free loopback port, trusting loopback, tuned for speed over durability
 * (fsync off). The test run's global setup starts one (setup/postgres.ts), and so does the bench.
 */
export interface Cluster {
  /** The `postgres` database of the cluster, as superuser `gateway`. */
  readonly url: string;
  /** Stops the server (`pg_ctl stop -m fast`: sessions are terminated), keeping its data and its port. */
  pause(): void;
  /** Starts it again on the same port. */
  resume(): void;
  /** Stops the server at once and removes its files; safe to call twice. */
  stop(): void;
}

/** initdb and pg_ctl: Debian's versioned directories first (newest wins), then PATH. */
export function findPostgresBinDir(): string | undefined {
  const debian = '/usr/lib/postgresql';
  const versions = existsSync(debian)
    ? readdirSync(debian)
        .filter((v) => existsSync(join(debian, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0]) return join(debian, versions[0], 'bin');
  return (process.env.PATH ?? '').split(delimiter).find((d) => d && existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')));
}

/** PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` system user. */
function runAs(): { uid: number; gid: number; prefix: string[] } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root, but there is no `postgres` user to run the test cluster as (it comes with the postgresql package)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid), prefix: ['runuser', '-u', 'postgres', '--'] };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Starts a cluster with the binaries in `bin` (see findPostgresBinDir); on failure nothing is left running. */
export async function startCluster(bin: string): Promise<Cluster> {
  const user = runAs();
  const run = (cmd: string, args: string[]) =>
    execFileSync(user ? user.prefix[0]! : join(bin, cmd), user ? [...user.prefix.slice(1), join(bin, cmd), ...args] : args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });

  const dir = mkdtempSync(join(tmpdir(), 'gw-pg-'));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const halt = (mode: 'immediate' | 'fast') => run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
  const stop = () => {
    try {
      halt('immediate');
    } catch {
      // Not running (start failed, or already gone): nothing to stop.
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    run('initdb', ['-D', data, '-A', 'trust', '-U', 'gateway', '-E', 'UTF8', '--no-locale', '--no-sync', '--no-instructions']);
    let port = 0;
    let opts = '';
    const start = () => run('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-o', opts, '-w', '-t', '60', 'start']);
    // A free port can be taken between the probe and the server's bind: try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      opts = [
        `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir}`,
        '-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300',
      ].join(' ');
      try {
        start();
        break;
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
    return { url: `postgres://gateway@127.0.0.1:${port}/postgres`, pause: () => void halt('fast'), resume: () => void start(), stop };
  } catch (err) {
    const e = err as Error & { stderr?: Buffer };
    const log = existsSync(join(dir, 'server.log')) ? readFileSync(join(dir, 'server.log'), 'utf8').slice(-2000) : '';
    stop();
    throw new Error(`could not start a throwaway PostgreSQL cluster with ${bin}: ${e.message}\n${e.stderr?.toString() ?? ''}${log}`);
  }
}
