import { describe, expect, it } from 'vitest';
import { decodeTask } from '../../src/upstream/dialects/task.js';
import { StatusAnswers } from '../../src/upstream/providers/status-answers.js';

/** A status answer is decoded once per distinct body while the task runs; an end and a garbled answer never stick. */
describe('status answers', () => {
  const answer = (body: string) => ({ statusCode: 200, headers: {}, body: Buffer.from(body) });
  const counted = () => {
    const calls = { n: 0 };
    return { calls, decode: (body: unknown) => (calls.n++, decodeTask(body)) };
  };
  const running = (progress: number) => JSON.stringify({ id: 'task_1', status: 'processing', progress });

  it('the same bytes again: the task decoded before, the JSON not parsed again', () => {
    const answers = new StatusAnswers();
    const { calls, decode } = counted();
    const first = answers.decode('task_1', answer(running(40)), decode);
    const again = answers.decode('task_1', answer(running(40)), decode);
    expect(again).toBe(first);
    expect(first).toMatchObject({ status: 'in_progress', progress: 40 });
    expect(calls.n).toBe(1);
  });

  it('other bytes, or another task: decoded', () => {
    const answers = new StatusAnswers();
    const { calls, decode } = counted();
    answers.decode('task_1', answer(running(40)), decode);
    expect(answers.decode('task_1', answer(running(41)), decode)).toMatchObject({ progress: 41 });
    expect(answers.decode('task_2', answer(running(41)), decode)).toMatchObject({ progress: 41 });
    expect(calls.n).toBe(3);
  });

  it('an end is decoded each time it is asked for, and a garbled answer is refused each time', () => {
    const answers = new StatusAnswers();
    const { calls, decode } = counted();
    const done = JSON.stringify({ id: 'task_1', status: 'completed', progress: 100 });
    answers.decode('task_1', answer(done), decode);
    answers.decode('task_1', answer(done), decode);
    expect(calls.n).toBe(2);
    expect(() => answers.decode('task_1', answer('{"id":'), decode)).toThrow(/garbled/);
    expect(() => answers.decode('task_1', answer('{"id":'), decode)).toThrow(/garbled/);
  });

  it('keeps a copy of the bytes: a buffer reused for the next answer does not change what was kept', () => {
    const answers = new StatusAnswers();
    const { calls, decode } = counted();
    const shared = Buffer.from(running(40));
    answers.decode('task_1', { statusCode: 200, headers: {}, body: shared }, decode);
    shared.write(running(41));
    expect(answers.decode('task_1', { statusCode: 200, headers: {}, body: shared }, decode)).toMatchObject({ progress: 41 });
    expect(calls.n).toBe(2);
  });
});
