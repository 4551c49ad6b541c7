import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_KEY, admin, startHarness, teamWithKey, type Harness } from '../support/harness.js';
import { probePython, runPython } from '../support/python.js';
import { IN_CI } from '../support/setup/prerequisite.js';
import { PYTHON_INSTALL, PYTHON_SDKS, type PythonSdk } from '../support/setup/python.js';

/**
 * The official `openai` Python package, unmodified, in each supported line (3.x and 2.x), each from its own
 * venv that the test command creates (test/support/setup/python.ts). The checks themselves live in
 * test/python/sdk_check.py.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = join(ROOT, 'test', 'python', 'sdk_check.py');
const VIDEO_BYTES = 200_003;
const RUN_TIMEOUT_MS = 100_000;

/** The gateway's upstream kinds, each with the models the script exercises through it. */
const KINDS = [
  { kind: 'newapi', args: [] as string[] },
  {
    kind: 'xai',
    args: ['--models', 'grok-imagine-video', '--multi-reference-model', 'grok-imagine-video', '--derive-model', 'grok-imagine-video', '--derive-ops', 'remix,extend,edit', '--unsupported-ops', ''],
  },
] as const;

function suite(sdk: PythonSdk, { kind, args }: (typeof KINDS)[number]) {
  const probe = probePython(sdk.python, ['-c', 'import openai; print(openai.__version__)'], 'cannot import openai');
  // In CI a missing venv is a failure, not a skip; on a workstation the suite skips, loudly.
  if (!probe.ok && !IN_CI) console.warn(`SKIPPED python SDK suite, ${sdk.line} (${probe.reason}). ${PYTHON_INSTALL}, then run npm test again.`);

  describe.skipIf(!probe.ok && !IN_CI)(`official openai Python SDK ${probe.ok ? probe.version : `${sdk.line} (missing)`} via test/python/sdk_check.py, ${kind} upstream`, () => {
    let h: Harness | undefined;
    beforeAll(async () => {
      if (probe.ok) h = await startHarness({ sim: { kind, completeAfterMs: 50, videoBytes: VIDEO_BYTES } });
    });
    afterAll(() => h?.close());

    it(
      'creates (with and without input_reference), polls, downloads, lists, deletes, remixes, extends and edits, and surfaces errors for every model family',
      async () => {
        if (!probe.ok || !h) throw new Error(`python SDK suite (${sdk.line}) cannot run in CI: ${probe.ok ? 'harness did not start' : probe.reason}. The test setup creates ${sdk.venv} from ${sdk.requirements}.`);
        // One 8 s grok-imagine-video at 720p ($0.56) fits this budget, a second does not (§10).
        const budgetTeam = `py-budget-${kind}`;
        const budget = await teamWithKey(h.url, budgetTeam, { usd_per_day: 1 });
        const r = await runPython(sdk.python, [SCRIPT, h.url, CLIENT_KEY, '--video-bytes', String(VIDEO_BYTES), '--budget-key', budget.key, ...args], { cwd: ROOT, timeoutMs: RUN_TIMEOUT_MS });
        if (r.code !== 0) {
          // What the upstream actually received helps tell a gateway bug from an SDK difference.
          const creates = h.sim
            .creates()
            .slice(-3)
            .map((q) => `${q.method} ${q.path} content-type=${String(q.headers['content-type'])}\n${q.body.toString('latin1').slice(0, 2000)}`);
          throw new Error(
            [
              `sdk_check.py ${r.timedOut ? `timed out after ${RUN_TIMEOUT_MS} ms` : `exited with code ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}`}`,
              '--- script output ---',
              r.output.trimEnd(),
              '--- last creates the upstream received ---',
              ...creates,
              '--- gateway log tail ---',
              ...h.logs.slice(-15).map((l) => l.trimEnd()),
            ].join('\n'),
          );
        }
        expect(r.output).toMatch(/all checks passed\s*$/);
        // Two creates reached the gateway: the refused one was not retried.
        expect((await admin(h.url, 'GET', `/teams/${budgetTeam}/usage`)).body.day.requests).toBe(2);
      },
      RUN_TIMEOUT_MS + 20_000,
    );
  });
}

for (const sdk of PYTHON_SDKS) for (const kind of KINDS) suite(sdk, kind);
