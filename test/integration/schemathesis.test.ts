import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startHarness, teamWithKey, type Harness } from '../support/harness.js';
import { probePython, runPython } from '../support/python.js';
import { IN_CI } from '../support/setup/prerequisite.js';
import { PYTHON_INSTALL, SCHEMATHESIS } from '../support/setup/python.js';

/**
 * Schemathesis, from PyPI (the venv the test command creates, test/support/setup/python.ts), runs its
 * property-based checks against the live gateway from the gateway's own /openapi.json: examples generated
 * from the documented schemas (valid and invalid ones), and sequences that follow the documented links
 * (create a video, then get, download and delete it; create a team, then issue and revoke a key).
 */
const CLI = join(SCHEMATHESIS.venv, 'bin', 'schemathesis');
/** Per operation and phase: 19 operations finish in well under a minute on two loaded cores. */
const MAX_EXAMPLES = 20;
/** Fixed, so that a failure reproduces (`--seed`) and the suite cannot pass or fail by luck. */
const SEED = 20250101;
const RUN_TIMEOUT_MS = 100_000;
/** A team's webhook endpoint operations (its deliveries' replay aside, see below). */
const WEBHOOK_OPERATIONS = ['setWebhook', 'getWebhook', 'rotateWebhookSecret', 'deleteWebhook', 'listWebhookDeliveries'];
const CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_schema_conformance',
  'response_headers_conformance',
].join(',');

/** Asynchronous: the gateway runs in this very process and must keep answering while schemathesis runs. */
const schemathesis = (args: string[], cwd: string) => runPython(CLI, args, { cwd, timeoutMs: RUN_TIMEOUT_MS });

const found = probePython(CLI, ['--version'], '--version failed');
if (!found.ok && !IN_CI) console.warn(`SKIPPED schemathesis suite (${found.reason}). ${PYTHON_INSTALL}, then run npm test again.`);

describe.skipIf(!found.ok && !IN_CI)(`${found.ok ? found.version : 'schemathesis (missing)'} against the live gateway's /openapi.json`, () => {
  let h: Harness;
  let teamKey: string;
  let cwd: string;

  beforeAll(async () => {
    if (!found.ok) throw new Error(`schemathesis suite cannot run in CI: ${found.reason}. The test setup creates ${SCHEMATHESIS.venv} from ${SCHEMATHESIS.requirements}.`);
    // Every name resolves to a public address, so that a generated webhook url is judged on its form alone (the
    // address rules have their own tests in test/integration/webhooks.test.ts), and no lookup leaves the machine.
    h = await startHarness({ env: { LOG_LEVEL: 'warn' }, resolveHost: async () => [{ address: '93.184.216.34', family: 4 }] });
    // Unguessable, so that the admin run's generated team ids never delete the team this run's key belongs to.
    teamKey = (await teamWithKey(h.url, `schemathesis-${randomBytes(6).toString('hex')}`)).key;
    // Hypothesis keeps its example database in the working directory: a scratch one, removed afterwards.
    cwd = mkdtempSync(join(tmpdir(), 'gw-schemathesis-'));
  });
  afterAll(async () => {
    await h?.close();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it(
    'finds no 5xx and no answer that differs from the document (status, content type, headers, body schema)',
    async () => {
      const common = [`${h.url}/openapi.json`, '--checks', CHECKS, '--max-examples', String(MAX_EXAMPLES), '--seed', String(SEED), '--no-color'];
      // Each credential opens only its part of the API: the team key /v1, the admin token /admin. One after the
      // other: the admin run follows links from GET /admin/teams to DELETE /admin/teams/{team}, and would delete
      // the team of the /v1 run's key under it.
      const derived = ['remixVideo', 'extendVideo', 'editVideo'];
      const runs = [
        await schemathesis(
          ['run', ...common, '-H', `Authorization: Bearer ${teamKey}`, '--include-path-regex', '^/(v1/|healthz|readyz|metrics|openapi)', ...derived.flatMap((id) => ['--exclude-operation-id', id])],
          cwd,
        ),
        // Derived videos need a completed source of a model its upstream can derive from, which generated ids and
        // bodies almost never name (their 404s and 400s would only be warned about): every answer is still
        // checked against the document, with the warnings off (test/integration/derived-*.test.ts cover success).
        await schemathesis(['run', ...common, '-H', `Authorization: Bearer ${teamKey}`, '--warnings', 'off', ...derived.flatMap((id) => ['--include-operation-id', id])], cwd),
        // A webhook delivery exists only once a video of a team with an endpoint has ended, which no generated
        // sequence reaches, so replaying one could only ever answer 404 (test/integration/webhooks.test.ts covers it).
        // Reading, rotating or deleting an endpoint needs a team, then its endpoint, then the call: among every admin
        // operation a walk that long is drawn so rarely that whether it is depends on the schemas' shape, so the
        // endpoint's operations have a run of their own, with the team they hang from.
        await schemathesis(
          ['run', ...common, '-H', `Authorization: Bearer ${ADMIN_TOKEN}`, '--include-path-regex', '^/admin/', ...[...WEBHOOK_OPERATIONS, 'replayWebhookDelivery'].flatMap((id) => ['--exclude-operation-id', id])],
          cwd,
        ),
        await schemathesis(['run', ...common, '-H', `Authorization: Bearer ${ADMIN_TOKEN}`, ...['createTeam', ...WEBHOOK_OPERATIONS].flatMap((id) => ['--include-operation-id', id])], cwd),
      ];
      for (const [i, r] of runs.entries()) {
        const which = ['/v1 and operations, with a team key', 'derived videos, with a team key', '/admin, with the admin token', 'webhook endpoints, with the admin token'][i];
        const outcome = r.timedOut ? `timed out after ${RUN_TIMEOUT_MS} ms` : `exited with code ${r.code}`;
        expect(r.code, `schemathesis run (${which}) ${outcome}:\n${r.output}\n--- gateway log tail ---\n${h.logs.slice(-10).join('')}`).toBe(0);
        // Exit 0 also when every answer was a 401 (a warning only): the summary must say nothing was wrong.
        expect(r.output, r.output).toMatch(/No issues found/);
      }
    },
    RUN_TIMEOUT_MS + 20_000,
  );
});
