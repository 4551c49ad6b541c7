import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * What the simulator's two kinds (./newapi.ts, ./xai.ts) share: the model names and rules both check, the
 * rejection they answer with, and the simulator's state and helpers they work on (`SimCore`).
 */
/** A model given to the simulator, with the limits the gateway's table states for it (a ModelSpec fits). */
export interface ExtraModel {
  readonly id: string;
  readonly family: 'imagine' | 'grok-video';
  readonly resolutions: readonly number[];
  readonly aspectRatios: readonly string[];
  readonly customAspectRatio: boolean;
  readonly seconds: { readonly min: number; readonly max: number };
  readonly defaultSeconds: number;
}

export interface SimTask {
  id: string;
  model: string;
  seconds: string;
  size: string;
  createdAtMs: number;
  completeAfterMs: number;
  outcome: 'completed' | 'failed' | 'cancelled';
  /** What a failed task says went wrong (the upstream's free text). */
  failMessage?: string;
  deleted: boolean;
  /** xai: which reference field the create used, for tests to see. */
  references?: 'image' | 'reference_images';
  /** What the video's bytes are shifted by (see `videoByteOf`): none for a create, `derivedSeed` for a derived video. */
  seed?: number;
  /** A derived video's source task and operation. */
  derivedFrom?: { task: string; operation: 'remix' | 'extension' | 'edit' };
  /** Status calls about the task answer this HTTP status (an upstream failing on one task) instead. */
  statusFailure?: number;
  /** Status calls received about the task, answered or failed. */
  statusCalls?: number;
  /** The create's prompt, for GET /_simulator/tasks (a soak tells its creates apart by it). */
  prompt?: string;
}

export const IMAGINE = /^grok-imagine-video(-[\w.-]+)?$/;
/** The 1.5 generation: 1080p besides 480p and 720p, and on xAI no edit and no extension. */
export const IMAGINE_15 = /^grok-imagine-video-1\.5(-[\w.-]+)?$/;
/**
 * What xAI charges per second of output, in ticks (10⁻¹⁰ USD), by model generation and resolution: its list
 * prices as of 2026, written out here on their own like every other rule of the simulator.
 */
const XAI_TICKS_PER_SECOND: Readonly<Record<'imagine' | 'imagine15', Readonly<Record<string, number>>>> = {
  imagine: { '480P': 500_000_000, '720P': 700_000_000 },
  imagine15: { '480P': 800_000_000, '720P': 1_400_000_000, '1080P': 2_500_000_000 },
};
/** A finished task's charge at those prices; undefined for a model or size they do not cover. */
export function listPriceTicks(task: Pick<SimTask, 'model' | 'seconds' | 'size'>): number | undefined {
  const perSecond = XAI_TICKS_PER_SECOND[IMAGINE_15.test(task.model) ? 'imagine15' : 'imagine'][task.size.toUpperCase()];
  return perSecond === undefined ? undefined : perSecond * Number(task.seconds);
}
export const GROK_VIDEO = /^grok-video-(1\.5|3)(-pro|-max)?$/;
export const PRESETS = ['1:1', '16:9', '9:16', '4:3', '3:4', '3:2', '2:3', '2:1', '1:2', '19.5:9', '9:19.5', '20:9', '9:20'];
export const DATA_URI = /^data:image\/(png|jpeg|jpg|webp|gif);base64,[A-Za-z0-9+/]+={0,2}$/;

export class Rejection extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

export const reject = (message: string, param: string | null = null): never => {
  throw new Rejection(400, message, param);
};

export function checkCommon(model: string, prompt: unknown) {
  if (typeof prompt !== 'string' || prompt.length === 0) reject('prompt is required', 'prompt');
  if ((prompt as string).length > 4096) reject('prompt must be at most 4096 characters', 'prompt');
  return model;
}

/** The limits of a model the simulator was given (see SimulatorOptions.models), checked as its own are. */
export function checkExtra(m: ExtraModel, seconds: string | undefined, size: string | undefined, ratio: string | undefined, sizeParam: string) {
  if (seconds !== undefined && (!/^\d+$/.test(seconds) || +seconds < m.seconds.min || +seconds > m.seconds.max)) {
    reject(`seconds must be a whole number from ${m.seconds.min} to ${m.seconds.max}`, 'seconds');
  }
  const sizes = m.resolutions.map((r) => `${r}P`);
  if (size !== undefined && !sizes.includes(size.toUpperCase())) reject(`${sizeParam} must be one of ${sizes.join(', ')}`, sizeParam);
  if (ratio !== undefined && !m.aspectRatios.includes(ratio) && !(m.customAspectRatio && /^\d+(\.\d+)?:\d+(\.\d+)?$/.test(ratio))) reject('unsupported aspect_ratio', 'aspect_ratio');
}

export const exactFields = (body: Record<string, unknown>, fields: readonly string[]) => {
  for (const k of Object.keys(body)) if (!fields.includes(k)) reject(`unknown field ${k}`, k);
  for (const k of fields) if (body[k] === undefined) reject(`${k} is required`, k);
};
export const videoUrlOf = (v: unknown): string => {
  if (typeof v !== 'object' || v === null || Object.keys(v).length !== 1 || typeof (v as { url?: unknown }).url !== 'string') reject('video must be {url}', 'video');
  return (v as { url: string }).url;
};
export const intIn = (v: unknown, min: number, max: number, param: string) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) reject(`${param} must be an integer from ${min} to ${max}`, param);
  return v as number;
};


/** The simulator as its kinds see it: the tasks, and the helpers every kind answers with. */
/** A prompt holding this makes a task that ends failed, so that a client can ask for a failure over the network. */
export const FAIL_PROMPT_MARK = '[simulate:fail]';
export const outcomeOf = (prompt: string): SimTask['outcome'] => (prompt.includes(FAIL_PROMPT_MARK) ? 'failed' : 'completed');

/** Every task the simulator keeps, with its prompt: what a soak compares with the gateway's records. */
export const TASKS_PATH = '/_simulator/tasks';

export const bearerToken = (req: IncomingMessage) => /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];

export interface SimCore {
  readonly tasks: Map<string, SimTask>;
  readonly completeAfterMs: number;
  /** See SimulatorOptions.createDelayMs. */
  readonly createDelayMs: number;
  readonly mediaUrlTtlMs: number;
  /** The length of every task's video (its bytes follow from the task's seed, see videoByteOf). */
  readonly videoBytes: number;
  /** See UpstreamSimulator.costTicks. */
  costTicks(task: SimTask): number | undefined;
  /**
   * How a new-api simulator answers about a task it does not know: 400 `task_not_exist`, as new-api does
   * (for an unknown task and for another account's alike), or a plain 404 as other resellers do.
   */
  readonly unknownTask: 'task_not_exist' | 'not_found';
  /** Where the simulator listens (its own URLs, such as xAI's media URLs, start with it). */
  readonly origin: string;
  extraOf(model: string): ExtraModel | undefined;
  familyOf(model: string): ExtraModel['family'] | undefined;
  status(t: SimTask): { status: string; progress: number };
  json(res: ServerResponse, body: unknown, status?: number): Promise<void>;
  failed(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  derivedTask(id: string, source: SimTask, operation: 'remix' | 'extension' | 'edit', prompt: string, seconds: string): SimTask;
  jsonBody(req: IncomingMessage, body: Buffer): Record<string, unknown>;
  addTask(task: SimTask): void;
  content(req: IncomingMessage, res: ServerResponse, seed: number): void;
}

/** One upstream kind: its routes behind the key check, its error shape, and any route it serves without a key. */
export interface KindRoutes {
  handle(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): Promise<unknown>;
  error(res: ServerResponse, status: number, message: string, param?: string | null): void;
  /** Answers a request that needs no key (xAI's media host) and says true; false for any other. */
  answerWithoutKey(req: IncomingMessage, res: ServerResponse, url: URL): boolean;
}
