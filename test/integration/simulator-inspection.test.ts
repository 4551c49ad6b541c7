import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamSimulator } from '../../src/simulator/server.js';
import { FAIL_PROMPT_MARK, TASKS_PATH } from '../../src/simulator/shared.js';

/**
 * What the soak (soak/) asks of the simulator over the network: its tasks with their prompts, a failure asked
 * for in the prompt, a create answered late, and the standalone process's settings for them.
 */
const KEY = 'sim-inspection-key';
const create = (url: string, prompt: string) =>
  fetch(`${url}/v1/videos`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'grok-imagine-video', prompt }) });

describe('the simulator for a soak', () => {
  let sim: UpstreamSimulator;
  let url: string;
  beforeAll(async () => {
    sim = new UpstreamSimulator({ apiKeys: [KEY], completeAfterMs: 0 });
    url = await sim.listen();
  });
  afterAll(() => sim.close());

  it(`lists its tasks with their prompts and states at ${TASKS_PATH}, to its key holder only; a prompt with ${FAIL_PROMPT_MARK} fails`, async () => {
    expect((await create(url, 'a fox')).status).toBe(200);
    expect((await create(url, `a hen ${FAIL_PROMPT_MARK}`)).status).toBe(200);
    expect((await fetch(`${url}${TASKS_PATH}`)).status).toBe(401);
    const res = await fetch(`${url}${TASKS_PATH}`, { headers: { authorization: `Bearer ${KEY}` } });
    const { data } = (await res.json()) as { data: Array<{ id: string; prompt: string; status: string }> };
    expect(data.map((t) => [t.prompt, t.status])).toEqual([
      ['a fox', 'completed'],
      [`a hen ${FAIL_PROMPT_MARK}`, 'failed'],
    ]);
    expect(data.map((t) => t.id)).toEqual([...sim.tasks.keys()]);
  });

  it('holds a create\'s answer createDelayMs, the task already made', async () => {
    sim.createDelayMs = 300;
    try {
      const before = sim.tasks.size;
      const started = performance.now();
      const answer = create(url, 'a slow fox');
      await expect.poll(() => sim.tasks.size, { interval: 10 }).toBe(before + 1);
      expect((await answer).status).toBe(200);
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    } finally {
      sim.createDelayMs = 0;
    }
  });

  it('the standalone process refuses a setting it cannot use with exit 78, naming it', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/simulator/main.ts'], {
      env: { PATH: process.env.PATH ?? '', SIM_API_KEY: KEY, SIM_PORT: '0', SIM_COMPLETE_AFTER_MS: 'soon' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(/SIM_COMPLETE_AFTER_MS must be a whole number/);
  });
});
