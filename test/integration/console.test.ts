import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CONSOLE_CSP } from '../../src/admin/console.js';
import { ADMIN_TOKEN, admin, startHarness, type Harness } from '../support/harness.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

/**
 * The operator console end to end: a real gateway, headless Chromium driving /admin/ui as an operator would,
 * and the official Node SDK using the key the page issued. Each state is photographed to test/artifacts/.
 */
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const HOSTILE_NAME = '<img src=x onerror=alert(1)>';
const WAIT = { timeout: 15_000, interval: 100 };

/** Null when the global setup found no browser: it said why, loudly (and failed the run under CI). */
const launch = inject('chromium');

describe.skipIf(launch === null)('operator console (/admin/ui) in headless Chromium', () => {
  let h: Harness;
  let browser: Browser;
  let page: Page;
  let shot = 0;
  /** Everything the browser complained about, with the step it happened in. */
  const complaints: Array<{ step: string; text: string; url: string }> = [];
  let step = 'start';
  const receiver = new WebhookReceiver();

  const screenshot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `console-${String(++shot).padStart(2, '0')}-${name}.png`), fullPage: true });
  const text = (selector: string) => page.locator(selector).first().textContent();
  const sdk = (key: string) => new OpenAI({ apiKey: key, baseURL: `${h.url}/v1`, maxRetries: 0 });

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await receiver.listen();
    // Stored results on, as by default: DATA_DIR/videos.
    h = await startHarness({ env: { WEBHOOK_ALLOWED_HOSTS: receiver.hostPort, WEBHOOK_POLL_INTERVAL_MS: '50', STORAGE_URL: '', STORAGE_POLL_INTERVAL_MS: '50' } });
    browser = await chromium.launch({
      executablePath: launch!.executablePath,
      env: { ...process.env, ...launch!.env },
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: h.url });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') complaints.push({ step, text: m.text(), url: m.location().url });
    });
    page.on('pageerror', (e) => complaints.push({ step, text: `pageerror: ${e.message}`, url: '' }));
    page.on('dialog', (d) => {
      complaints.push({ step, text: `dialog: ${d.message()}`, url: '' });
      void d.dismiss();
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
    await receiver.close();
  });

  it('serves the page and its files without the admin token, with a strict CSP and nothing inline; the API stays closed', async () => {
    const page = await fetch(`${h.url}/admin/ui`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'"]) {
      expect(CONSOLE_CSP).toContain(directive);
    }
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await page.text();
    // Under that CSP inline code would not run anyway; none is written, so none is needed.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(html).not.toMatch(/https?:\/\//); // no CDN: everything from this origin

    for (const [path, type] of [['/admin/ui/console.js', 'text/javascript; charset=utf-8'], ['/admin/ui/console.css', 'text/css; charset=utf-8']] as const) {
      const res = await fetch(`${h.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      const body = await res.text();
      // Data reaches the DOM as text only; and nothing is fetched from elsewhere (the SVG namespace is a name).
      expect(body).not.toMatch(/\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write/);
      expect(body).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg')/);
    }
    const slash = await fetch(`${h.url}/admin/ui/`, { redirect: 'manual' });
    expect(slash.status).toBe(301);
    expect(new URL(slash.headers.get('location')!, `${h.url}/admin/ui/`).pathname).toBe('/admin/ui');
    expect((await fetch(`${h.url}/admin/ui/secrets.json`)).status).toBe(404);
    // The page is public; the data is not.
    expect((await fetch(`${h.url}/admin/teams`)).status).toBe(401);
  });

  it('refuses a wrong token, then signs in with ADMIN_TOKEN kept in sessionStorage and never in a URL', async () => {
    await page.goto(`${h.url}/admin/ui`);
    await page.locator('#token').waitFor();
    await screenshot('sign-in');

    step = 'wrong token';
    await page.fill('#token', 'not-the-admin-token');
    await page.click('#sign-in-form button[type=submit]');
    await expect.poll(() => text('#status'), WAIT).toMatch(/admin token was refused/);
    expect(await page.isVisible('#console-view')).toBe(false);
    expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
    await screenshot('wrong-token');

    step = 'signed in';
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#sign-in-form button[type=submit]');
    await page.locator('#console-view').waitFor({ state: 'visible' });
    await expect.poll(() => text('#status'), WAIT).toBe('Signed in.');
    // Nothing tracked yet: an empty backlog, no end noticed.
    expect(await text('#tracking-due')).toBe('0');
    expect(await text('#tracking-ends')).toBe('0');
    expect(await text('#tracking-lag')).toBe('—');
    expect(await page.evaluate<string[]>('Object.values(sessionStorage)')).toEqual([ADMIN_TOKEN]);
    expect(page.url()).not.toContain(ADMIN_TOKEN);
    expect(await page.inputValue('#token')).toBe('');
    await screenshot('signed-in-empty');
  });

  let secret = '';
  it('creates a team with a policy and issues a key whose secret is shown once, with a copy button', async () => {
    await page.fill('#create-team-form [name=id]', 'studio');
    await page.fill('#create-team-form [name=name]', 'Studio North');
    await page.fill('#create-team-form [name=video_seconds_per_day]', '100');
    await page.fill('#create-team-form [name=video_seconds_per_month]', '1000');
    await page.fill('#create-team-form [name=max_concurrent_jobs]', '3');
    await page.click('#create-team-form button[type=submit]');
    await page.locator('#team-view').waitFor({ state: 'visible' });
    await expect.poll(() => text('#team-title'), WAIT).toBe('studio');
    expect((await admin(h.url, 'GET', '/teams/studio')).body).toMatchObject({
      name: 'Studio North',
      quota: { video_seconds_per_day: 100, video_seconds_per_month: 1000, max_concurrent_jobs: 3 },
    });
    await expect.poll(() => text('tr[data-team="studio"] [data-usage=day]'), WAIT).toBe('0 s / 100 s');
    expect(await text('#usage [data-usage=jobs]')).toBe('0 / 3');

    await page.fill('#issue-key-form [name=name]', 'render-farm');
    await page.click('#issue-key-form button[type=submit]');
    await page.locator('#new-key').waitFor({ state: 'visible' });
    secret = (await text('#new-key-secret')) ?? '';
    expect(secret.length).toBeGreaterThan(40);
    const [key] = (await admin(h.url, 'GET', '/teams/studio/keys')).body.data;
    expect(secret.startsWith(key.prefix)).toBe(true);
    await expect.poll(() => page.locator('#keys tbody tr').count(), WAIT).toBe(1);
    expect(await text(`#keys tr[data-key="${key.id}"]`)).toContain('render-farm');
    await screenshot('key-issued');

    await page.click('#copy-key');
    await expect.poll(() => text('#status'), WAIT).toBe('Key copied to the clipboard.');
    expect(await page.evaluate<string>('navigator.clipboard.readText()')).toBe(secret);

    // Shown once: after Done the secret is nowhere on the page, and the API never returns it again.
    await page.click('#dismiss-key');
    expect(await page.content()).not.toContain(secret);
    expect(JSON.stringify((await admin(h.url, 'GET', '/teams/studio/keys')).body)).not.toContain(secret);
  });

  it('shows the usage move after the key is used with the Node SDK, in the table, the figures and the daily chart', async () => {
    const client = sdk(secret);
    // Running for a moment, so that a poll notices its end (the tracking panel counts it).
    h.sim.completeAfterMs = 300;
    const video = await client.videos.create({ model: 'grok-imagine-video', prompt: 'a lighthouse at dawn', seconds: '8', size: '1280x720' });
    h.sim.completeAfterMs = 0;
    await expect.poll(async () => (await client.videos.retrieve(video.id)).status, WAIT).toBe('completed');

    await page.click('#refresh');
    await expect.poll(() => text('tr[data-team="studio"] [data-usage=day]'), WAIT).toBe('8 s / 100 s');
    expect(await text('tr[data-team="studio"] [data-usage=month]')).toBe('8 s / 1000 s');
    expect(await text('#usage [data-usage=day]')).toBe('8 s / 100 s');
    expect(await text('#usage [data-usage=day-reserved]')).toBe('0 s');
    expect(await text('#usage [data-usage=jobs]')).toBe('0 / 3');
    // The SDK's polls noticed the job's end: the tracking panel counts it, with its lag and its status calls.
    expect(await text('#tracking-ends')).toBe('1');
    expect(await text('#tracking-lag')).toMatch(/^\d+\.\d s \/ \d+\.\d s \/ \d+\.\d s$/);
    expect(await text('#tracking-checks')).toMatch(/^\d+\.\d$/);
    expect(await text('#tracking-overdue')).toBe('none late');
    // 8 s of grok-imagine-video at 720p, $0.07 a second (§10).
    expect(await text('tr[data-team="studio"] [data-usage=usd-day]')).toBe('$0.56 / no limit');
    expect(await text('#usage [data-usage=usd-month]')).toBe('$0.56 / no limit');
    expect(await text('#usage [data-usage=usd-day-reserved]')).toBe('$0.00');
    expect(await text('#by-model tr[data-model="grok-imagine-video"] td:nth-child(3)')).toBe('$0.56');
    const today = new Date().toISOString().slice(0, 10);
    const bars = page.locator('#chart rect.bar');
    expect(await bars.count()).toBe(30);
    expect(await bars.last().getAttribute('data-date')).toBe(today);
    expect(await bars.last().getAttribute('data-seconds')).toBe('8');
    expect(Number(await bars.last().getAttribute('height'))).toBeGreaterThan(0);
    expect(Number(await bars.first().getAttribute('height'))).toBe(0);
    await screenshot('usage-after-sdk');
  });

  it("shows stored results: the video's stored copy and expiry, and the totals across the gateway", async () => {
    const { body } = await admin(h.url, 'GET', '/teams/studio/videos');
    expect(body.data).toHaveLength(1);
    const id = body.data[0].id;
    // The copy is made in the background after completion: refresh until the page shows it.
    await expect
      .poll(async () => {
        await page.click('#refresh');
        return page.locator(`#videos tr[data-video="${id}"]`).getAttribute('data-storage');
      }, WAIT)
      .toBe('stored');
    const video = (await admin(h.url, 'GET', '/teams/studio/videos')).body.data[0];
    expect(video.storage).toMatchObject({ state: 'stored', attempts: 0, error: null, next_attempt_at: null });
    const row = `#videos tr[data-video="${id}"]`;
    // The simulator's video is 1 MiB.
    expect(video.storage.bytes).toBe(1024 * 1024);
    expect(await text(`${row} [data-cell=storage]`)).toBe('stored, 1.0 MiB');
    // Seven days (VIDEO_RETENTION_DAYS) after completion, to the minute.
    expect(video.expires_at).toBe(video.completed_at + 7 * 86_400);
    expect(await text(`${row} [data-cell=expires]`)).toBe(`${new Date(video.expires_at * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`);

    const storage = (await admin(h.url, 'GET', '/storage')).body;
    expect(storage).toMatchObject({ object: 'storage', backend: 'file', stored_videos: 1, stored_bytes: video.storage.bytes, pending_copies: 0, failed_copies: 0 });
    expect(await text('#storage [data-storage=backend]')).toBe('a directory');
    expect(await text('#storage [data-storage=stored]')).toBe('1 (1.0 MiB)');
    expect(await text('#storage [data-storage=pending]')).toBe('0');
    expect(await text('#storage [data-storage=failed]')).toBe('0');
    await screenshot('stored-results');
  });

  it('edits the policy', async () => {
    await page.fill('#policy-form [name=video_seconds_per_day]', '50');
    await page.fill('#policy-form [name=requests_per_minute]', '120');
    await page.click('#policy-form button[type=submit]');
    await expect.poll(() => text('#usage [data-usage=day]'), WAIT).toBe('8 s / 50 s');
    expect((await admin(h.url, 'GET', '/teams/studio')).body.quota).toEqual({
      video_seconds_per_day: 50,
      video_seconds_per_month: 1000,
      max_concurrent_jobs: 3,
      requests_per_minute: 120,
    });
    await screenshot('policy-edited');
  });

  it("sets the team's webhook (secret shown once), lists its deliveries, replays one, rotates the secret and deletes it", async () => {
    await page.fill('#webhook-form [name=url]', `${receiver.url}/console`);
    await page.uncheck('#webhook-form [name="video.failed"]');
    await page.click('#webhook-form button[type=submit]');
    await page.locator('#new-webhook-secret').waitFor({ state: 'visible' });
    const hookSecret = (await text('#new-webhook-secret-value')) ?? '';
    expect(hookSecret).toMatch(/^whsec_/);
    expect((await admin(h.url, 'GET', '/teams/studio/webhook')).body).toMatchObject({ url: `${receiver.url}/console`, events: ['video.completed'], enabled: true });
    await expect.poll(() => text('#webhook-state'), WAIT).toBe('(enabled)');
    await page.click('#dismiss-webhook-secret');
    expect(await page.content()).not.toContain(hookSecret);

    const client = sdk(secret);
    const video = await client.videos.create({ model: 'grok-imagine-video', prompt: 'a harbour at night', seconds: '4', size: '1280x720' });
    await expect.poll(async () => (await client.videos.retrieve(video.id)).status, WAIT).toBe('completed');
    await receiver.waitFor(1);
    const event = (await sdk('unused').webhooks.unwrap(receiver.received[0]!.body, receiver.received[0]!.headers as Record<string, string>, hookSecret)) as any;
    expect(event).toMatchObject({ type: 'video.completed', data: { id: video.id } });
    await page.click('#refresh');
    const row = page.locator('#deliveries tbody tr').first();
    await expect.poll(() => row.locator('td').nth(3).textContent(), WAIT).toBe('delivered');
    expect(await row.locator('td').nth(0).textContent()).toBe(event.id);
    await screenshot('webhook-delivered');

    await row.locator('button').click();
    await receiver.waitFor(2);
    expect(receiver.received[1]!.headers['webhook-id']).toBe(event.id);

    await page.click('#rotate-webhook-secret');
    await page.locator('#new-webhook-secret').waitFor({ state: 'visible' });
    await expect.poll(() => text('#new-webhook-secret-value'), WAIT).toMatch(/^whsec_/);
    expect(await text('#new-webhook-secret-value')).not.toBe(hookSecret);

    step = 'webhook deleted';
    await page.locator('#delete-webhook button').click();
    await page.locator('#delete-webhook button').click();
    await expect.poll(() => text('#webhook-state'), WAIT).toBe('(none)');
    expect(await page.isVisible('#new-webhook-secret')).toBe(false);
    expect((await admin(h.url, 'GET', '/teams/studio/webhook')).res.status).toBe(404);
  });

  it('revokes the key in two clicks; the SDK then gets 401', async () => {
    const row = page.locator('#keys tbody tr').first();
    await row.locator('button.danger').click();
    expect(await row.locator('button.danger').textContent()).toBe('Confirm revoke');
    await row.locator('button.danger').click();
    await expect.poll(() => text('#status'), WAIT).toMatch(/revoked/);
    await expect.poll(() => row.locator('td').nth(5).textContent(), WAIT).toMatch(/^revoked /);
    expect(await row.locator('button').count()).toBe(0);
    await screenshot('key-revoked');

    const refused = await sdk(secret)
      .videos.create({ model: 'grok-imagine-video', prompt: 'after revocation', seconds: '8', size: '1280x720' })
      .then(() => undefined, (e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((refused as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401);
  });

  it('renders a hostile team name as text', async () => {
    step = 'hostile name';
    expect((await admin(h.url, 'POST', '/teams', { id: 'hostile', name: HOSTILE_NAME })).res.status).toBe(201);
    await page.click('#refresh');
    await expect.poll(() => text('tr[data-team="hostile"] td:nth-child(2)'), WAIT).toBe(HOSTILE_NAME);
    await page.click('tr[data-team="hostile"] button');
    await expect.poll(() => text('#team-name'), WAIT).toBe(HOSTILE_NAME);
    expect(await page.inputValue('#policy-form [name=name]')).toBe(HOSTILE_NAME);
    expect(await page.locator('img').count()).toBe(0);
    await screenshot('hostile-name');
  });

  it('signs out and forgets the token and the data', async () => {
    step = 'signed out';
    await page.click('#sign-out');
    await page.locator('#sign-in-view').waitFor({ state: 'visible' });
    expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
    expect(await page.locator('#teams tbody tr').count()).toBe(0);
    await page.reload();
    await page.locator('#sign-in-view').waitFor({ state: 'visible' });
    expect(await page.isVisible('#console-view')).toBe(false);
    await screenshot('signed-out');
  });

  it('logged no console error, page error, CSP violation or dialog beyond the expected refusals', () => {
    // The browser itself logs every non-2xx fetch: the wrong token's 401, the 404 of GET /admin/upstreams
    // on a gateway that has no such endpoint (the page then leaves the section out)
    const expected = (c: (typeof complaints)[number]) =>
      c.text.startsWith('Failed to load resource') &&
      ((c.step === 'wrong token' && c.url.endsWith('/admin/teams') && c.text.includes('401')) ||
        // and GET …/webhook of a team that has none
        ((c.url.endsWith('/admin/upstreams') || c.url.endsWith('/webhook')) && c.text.includes('404')));
    expect(complaints.filter((c) => !expected(c))).toEqual([]);
    expect(complaints.some((c) => c.step === 'wrong token')).toBe(true); // the listener does hear the browser
  });
});
