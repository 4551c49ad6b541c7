import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { prerequisiteMissing } from './prerequisite.js';

/**
 * The Python suites' venvs, each pinned by its own requirements file: one per supported `openai` line, and
 * one for schemathesis. Created by the test command itself and re-created only when the requirements file
 * (or the Python that built the venv) changes: a stamp in the venv holds the hash of both, so a second run
 * costs one file read.
 */
export interface PythonVenv {
  /** What the suite is called in the report. */
  readonly line: string;
  /** The suite that needs the venv, for the banner when it cannot be made. */
  readonly suite: string;
  readonly requirements: string;
  readonly venv: string;
  readonly python: string;
}
export type PythonSdk = PythonVenv;

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const venv = (line: string, name: string, suite: string): PythonVenv => ({
  line,
  suite,
  requirements: join(ROOT, 'test', 'python', `requirements-${name}.txt`),
  venv: join(ROOT, '.venv', `py-${name}`),
  python: join(ROOT, '.venv', `py-${name}`, 'bin', 'python'),
});

const PYTHON_SUITE = 'Python SDK suite (test/integration/python-sdk.test.ts)';
const SCHEMATHESIS_SUITE = 'schemathesis suite (test/integration/schemathesis.test.ts)';
const MOTO_SUITE = 'S3 stored-results suite (test/integration/stored-results-s3.test.ts)';

/** 3.x is current; 2.x is the oldest line with `videos`, and it sends JSON where 3.x sends multipart. */
export const PYTHON_SDKS: readonly PythonSdk[] = [venv('openai 3.x', 'openai3', PYTHON_SUITE), venv('openai 2.x', 'openai2', PYTHON_SUITE)];
export const SCHEMATHESIS: PythonVenv = venv('schemathesis', 'schemathesis', SCHEMATHESIS_SUITE);
/** moto in server mode: a real S3-compatible HTTP server for the S3 backend's suite. */
export const MOTO: PythonVenv = venv('moto', 'moto', MOTO_SUITE);

export const PYTHON_INSTALL = 'Install python3 with its venv module (Debian/Ubuntu: apt-get install python3 python3-venv)';

const run = promisify(execFile);
const STAMP = '.requirements.sha256';

/** The interpreter venvs are made from, and its version (part of the stamp), or undefined when there is none. */
function basePython(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import sys, venv, ensurepip; print(sys.version)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

async function ensureVenv(s: PythonVenv, pythonVersion: string): Promise<void> {
  const stamp = createHash('sha256').update(pythonVersion).update('\0').update(readFileSync(s.requirements)).digest('hex');
  const stampFile = join(s.venv, STAMP);
  if (existsSync(s.python) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) return;
  console.log(`test setup: creating ${s.venv} from ${s.requirements}`);
  try {
    await run('python3', ['-m', 'venv', '--clear', s.venv]);
    await run(s.python, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', '-r', s.requirements], { timeout: 300_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    prerequisiteMissing(s.suite, `pip could not install ${s.requirements} into ${s.venv}: ${(e.stderr || e.message).trim().split('\n').pop()}`, 'Check the network (pip needs PyPI)');
    return;
  }
  // Written last: an interrupted install leaves no stamp and is redone next time.
  writeFileSync(stampFile, stamp);
}

export async function setupPython(): Promise<void> {
  const version = basePython();
  if (!version) return prerequisiteMissing(`${PYTHON_SUITE}, ${SCHEMATHESIS_SUITE} and ${MOTO_SUITE}`, 'python3 (or its venv module) was not found', PYTHON_INSTALL);
  await Promise.all([...PYTHON_SDKS, SCHEMATHESIS, MOTO].map((s) => ensureVenv(s, version)));
}
