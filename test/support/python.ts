import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Running the Python programs of the Python suites (from the venvs of test/support/setup/python.ts) against
 * the gateway on loopback.
 */

/** The child's environment: no proxy may sit between it and the loopback gateway, no stray OpenAI settings. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' };
  for (const k of Object.keys(env)) if (/^(https?_proxy|all_proxy|openai_.*)$/i.test(k)) delete env[k];
  return env;
}

export type PythonProbe = { ok: true; version: string } | { ok: false; reason: string };

/**
 * Synchronous on purpose (collection time, nothing is listening yet): is `program` there, and does `args` run,
 * printing its version? `failure` says what it means when it does not ("cannot import openai").
 */
export function probePython(program: string, args: readonly string[], failure: string): PythonProbe {
  if (!existsSync(program)) return { ok: false, reason: `${program} does not exist` };
  const r = spawnSync(program, args, { encoding: 'utf8', timeout: 30_000, env: childEnv() });
  if (r.status !== 0) return { ok: false, reason: `${program} ${failure}: ${(r.stderr || String(r.error ?? '')).trim().split('\n').pop()}` };
  return { ok: true, version: r.stdout.trim() };
}

export interface PythonRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout and stderr, interleaved as they came. */
  output: string;
  timedOut: boolean;
}

/** Asynchronous: the gateway runs in this very process and must keep answering while the program runs. */
export function runPython(program: string, args: readonly string[], opts: { cwd: string; timeoutMs: number }): Promise<PythonRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { cwd: opts.cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, timedOut });
    });
  });
}
