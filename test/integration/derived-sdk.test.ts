import OpenAI6 from 'openai';
import OpenAI7, { toFile } from 'openai7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derivedSeed, videoByteOf } from '../../src/simulator/server.js';
import type { SimTask } from '../../src/simulator/shared.js';
import { CLIENT_KEY, startHarness, type Harness } from '../support/harness.js';

/**
 * Remix, extend and edit (§9) through the official Node SDKs, unmodified, against a simulator of each
 * upstream kind: each source kind × each operation, the new video polled to completed, downloaded and
 * compared byte for byte with what the simulator served for the new task.
 */
const VIDEO_BYTES = 6_000;

type Client = OpenAI7 | OpenAI6;
type Video = Awaited<ReturnType<OpenAI7['videos']['retrieve']>>;

const harnesses: Record<'newapi' | 'xai', Harness> = {} as never;
beforeAll(async () => {
  const [n, x] = await Promise.all([
    startHarness({ sim: { kind: 'newapi', completeAfterMs: 40, videoBytes: VIDEO_BYTES } }),
    startHarness({ sim: { kind: 'xai', completeAfterMs: 40, videoBytes: VIDEO_BYTES } }),
  ]);
  harnesses.newapi = n;
  harnesses.xai = x;
});
afterAll(() => Promise.all(Object.values(harnesses).map((h) => h.close())));

const node7 = (h: Harness) => new OpenAI7({ apiKey: CLIENT_KEY, baseURL: `${h.url}/v1`, maxRetries: 0 });
const node6 = (h: Harness) => new OpenAI6({ apiKey: CLIENT_KEY, baseURL: `${h.url}/v1`, maxRetries: 0 });

async function completed(client: Client, id: string): Promise<Video> {
  let v = (await client.videos.retrieve(id)) as Video;
  for (let i = 0; i < 500 && v.status !== 'completed'; i++) {
    expect(['queued', 'in_progress']).toContain(v.status);
    await new Promise((r) => setTimeout(r, 10));
    v = (await client.videos.retrieve(id)) as Video;
  }
  expect(v.status).toBe('completed');
  return v;
}

const newestTask = (h: Harness): SimTask => [...h.sim.tasks.values()].at(-1)!;

/** A completed source video of `model`, and the simulator's task behind it. */
async function source(h: Harness, model: string, seconds: '4' | '8' = '8') {
  const client = node7(h);
  const v = await client.videos.create({ model, prompt: 'a harbour at night', seconds, size: '1280x720' });
  const task = newestTask(h);
  await completed(client, v.id);
  return { video: v, task };
}

const CASES = [
  { kind: 'newapi', model: 'grok-video-3', op: 'remix', sdk: 'openai7' },
  { kind: 'newapi', model: 'grok-video-3', op: 'remix', sdk: 'openai6' },
  { kind: 'newapi', model: 'grok-video-3', op: 'extend', sdk: 'openai7' },
  { kind: 'xai', model: 'grok-imagine-video', op: 'remix', sdk: 'openai7' },
  { kind: 'xai', model: 'grok-imagine-video', op: 'remix', sdk: 'openai6' },
  { kind: 'xai', model: 'grok-imagine-video', op: 'extend', sdk: 'openai7' },
  { kind: 'xai', model: 'grok-imagine-video', op: 'edit', sdk: 'openai7' },
] as const;

describe.each(CASES)('$kind upstream, a $model source: $op with $sdk', ({ kind, model, op, sdk }) => {
  it('answers a new Video, sends the source\'s own wire format, and the new video completes and downloads as served', async () => {
    const h = harnesses[kind];
    const src = await source(h, model);
    const client = sdk === 'openai7' ? node7(h) : node6(h);
    const prompt = `${op} it: the harbour at dawn`;
    const before = h.sim.derives().length;
    const v = (op === 'remix'
      ? await client.videos.remix(src.video.id, { prompt })
      : op === 'extend'
        ? await node7(h).videos.extend({ prompt, seconds: '4', video: { id: src.video.id } })
        : await node7(h).videos.edit({ prompt, video: { id: src.video.id } })) as Video;

    expect(v.id).toMatch(/^video_[0-9a-f]{32}$/);
    expect(v.id).not.toBe(src.video.id);
    expect(['queued', 'in_progress']).toContain(v.status);
    expect(v.model).toBe(model);
    expect(v.prompt).toBe(prompt);
    expect(v.size).toBe('1280x720');
    // A remix and an edit make a video as long as the source; an extension reserves (and is) its own seconds.
    expect(v.seconds).toBe(op === 'extend' ? '4' : '8');
    expect(v.remixed_from_video_id).toBe(op === 'remix' ? src.video.id : null);

    // What the upstream received: one call, in its own kind's form, naming the source as the gateway recorded it.
    const sent = h.sim.derives().slice(before);
    expect(sent).toHaveLength(1);
    const req = sent[0]!;
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers.authorization).toBe('Bearer sk-upstream-secret-0123456789abcdef');
    const body = JSON.parse(req.body.toString());
    const task = newestTask(h);
    expect(task.derivedFrom?.task).toBe(src.task.id);
    if (kind === 'newapi' && op === 'remix') {
      expect(req.path).toBe(`/v1/videos/${src.task.id}/remix`);
      expect(body).toEqual({ prompt });
    } else if (kind === 'newapi') {
      expect(req.path).toBe('/v1/videos/extensions');
      expect(body).toEqual({ model, prompt, duration: 4, start_time: 8, video: { url: src.task.id } });
    } else {
      expect(req.path).toBe(op === 'extend' ? '/v1/videos/extensions' : '/v1/videos/edits');
      expect(Object.keys(body).sort()).toEqual(op === 'extend' ? ['duration', 'model', 'prompt', 'video'] : ['model', 'prompt', 'video']);
      expect(body).toMatchObject({ model, prompt, ...(op === 'extend' ? { duration: 4 } : {}) });
      // The media URL xAI gave for the source, which only the gateway knows.
      expect(new URL(body.video.url).pathname).toBe(`/media/${src.task.id}.mp4`);
    }

    const done = await completed(client, v.id);
    expect(done.remixed_from_video_id).toBe(op === 'remix' ? src.video.id : null);
    const bytes = Buffer.from(await (await client.videos.downloadContent(v.id)).arrayBuffer());
    expect(bytes.equals(h.sim.contentOf(task.id))).toBe(true);
    // Not the source's bytes: the new video is the simulator's new task, shifted by its prompt's seed.
    expect(bytes[0]).toBe(videoByteOf(derivedSeed(prompt), 0));
    expect(bytes.equals(h.sim.contentOf(src.task.id))).toBe(false);

    // The team's like any other video: listed, then deletable.
    expect((await client.videos.list({ limit: 100 })).data.map((x) => x.id)).toContain(v.id);
    await client.videos.delete(v.id);
    await expect(client.videos.retrieve(v.id)).rejects.toMatchObject({ status: 404 });
  });
});

describe('operations the source\'s upstream cannot do: 400 unsupported_operation, never an upstream call', () => {
  it.each([
    { kind: 'newapi', model: 'grok-video-3', op: 'edit' },
    { kind: 'newapi', model: 'grok-imagine-video', op: 'remix' },
    { kind: 'newapi', model: 'grok-imagine-video', op: 'extend' },
    { kind: 'newapi', model: 'grok-imagine-video', op: 'edit' },
    { kind: 'newapi', model: 'grok-video-1.5', op: 'remix' },
  ] as const)('$op of a $model video on $kind', async ({ kind, model, op }) => {
    const h = harnesses[kind];
    const src = await source(h, model);
    const client = node7(h);
    const before = h.sim.derives().length;
    const listed = (await client.videos.list({ limit: 100 })).data.length;
    const err = await (op === 'remix'
      ? client.videos.remix(src.video.id, { prompt: 'p' })
      : op === 'extend'
        ? client.videos.extend({ prompt: 'p', seconds: '4', video: { id: src.video.id } })
        : client.videos.edit({ prompt: 'p', video: { id: src.video.id } })
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI7.BadRequestError);
    const e = err as InstanceType<typeof OpenAI7.BadRequestError>;
    expect(e.code).toBe('unsupported_operation');
    expect(e.param).toBe('video');
    expect(e.message).toContain(op === 'extend' ? "'extension'" : `'${op}'`);
    expect(h.sim.derives().length).toBe(before);
    // Nothing was admitted: no new job appears.
    expect((await client.videos.list({ limit: 100 })).data.length).toBe(listed);
  });

  it('an xAI edit of a source longer than xAI edits take is refused before the call', async () => {
    const h = harnesses.xai;
    const src = await source(h, 'grok-imagine-video', '8');
    const long = await node7(h).videos.create({ model: 'grok-imagine-video', prompt: 'long', seconds: '12' as never });
    await completed(node7(h), long.id);
    const before = h.sim.derives().length;
    const err = await node7(h).videos.edit({ prompt: 'p', video: { id: long.id } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, code: 'unsupported_value', param: 'video' });
    expect(h.sim.derives().length).toBe(before);
    // Its extension is fine, within xAI's 1–10 s; 12 s is not.
    const ext = await node7(h).videos.extend({ prompt: 'p', seconds: '12', video: { id: src.video.id } }).catch((e: unknown) => e);
    expect(ext).toMatchObject({ status: 400, code: 'unsupported_value', param: 'seconds' });
    expect(h.sim.derives().length).toBe(before);
  });
});

describe('what the SDKs send', () => {
  it('a video upload instead of {id} is 400 unsupported_value naming video, with no upstream call', async () => {
    const h = harnesses.xai;
    const before = h.sim.derives().length;
    const file = await toFile(Buffer.from('not really a video'), 'clip.mp4', { type: 'video/mp4' });
    for (const call of [
      () => node7(h).videos.edit({ prompt: 'p', video: file }),
      () => node7(h).videos.extend({ prompt: 'p', seconds: '4', video: file }),
    ]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI7.BadRequestError);
      expect(err).toMatchObject({ code: 'unsupported_value', param: 'video' });
    }
    expect(h.sim.derives().length).toBe(before);
  });

  it('JSON and multipart (`video[id]`) bodies alike, by curl-style requests', async () => {
    const h = harnesses.xai;
    const src = await source(h, 'grok-imagine-video', '4');
    const headers = { authorization: `Bearer ${CLIENT_KEY}` };
    const asJson = await fetch(`${h.url}/v1/videos/edits`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'json edit', video: { id: src.video.id } }),
    });
    expect(asJson.status).toBe(200);
    const form = new FormData();
    form.set('prompt', 'form extension');
    form.set('seconds', '3');
    form.set('video[id]', src.video.id);
    const asForm = await fetch(`${h.url}/v1/videos/extensions`, { method: 'POST', headers, body: form });
    expect(asForm.status).toBe(200);
    expect(await asForm.json()).toMatchObject({ seconds: '3', status: 'queued' });
    const remixForm = new FormData();
    remixForm.set('prompt', 'form remix');
    const remix = await fetch(`${h.url}/v1/videos/${src.video.id}/remix`, { method: 'POST', headers, body: remixForm });
    expect(await remix.json()).toMatchObject({ remixed_from_video_id: src.video.id });
  });
});
