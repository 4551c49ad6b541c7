import { parseArgs } from 'node:util';
import { directBackend, httpBackend, type AdminBackend, type AdminOps } from './cli-backends.js';
import { migrateSqlite } from './migrate-sqlite.js';
import { ConfigError, loadConfig } from '../config.js';
import { ApiError, invalidRequest, toErrorBody } from '../domain/errors.js';
import type { QuotaPolicy } from '../domain/quota-policy.js';

/**
 * The operator CLI: the admin API's operations for people at a shell and for scripts. It runs through a running
 * gateway's admin API (--url / GATEWAY_URL) or directly on the gateway's store; both print the same.
 */

/** What each exit status means; the help text and the README table come from here. */
export const EXIT = {
  ok: { code: 0, meaning: 'done' },
  unexpected: { code: 1, meaning: 'unexpected error (a bug, or the gateway answered 500)' },
  usage: { code: 2, meaning: 'usage: unknown command or flag, missing or extra argument, or a value the admin API refused (400)' },
  notFound: { code: 3, meaning: 'no such team, key, webhook endpoint or delivery (404)' },
  conflict: { code: 4, meaning: 'conflict: the team id exists, or belonged to a deleted team (409)' },
  denied: { code: 5, meaning: 'missing or wrong admin token, or a team key used as one (401, 403)' },
  unavailable: { code: 6, meaning: 'gateway unreachable or timed out, admin API disabled (no ADMIN_TOKEN), store cannot be opened (an unusable DATA_DIR, PostgreSQL down) (429, 502-504)' },
  config: { code: 78, meaning: 'invalid environment (a malformed variable, CONFIG_FILE), as the gateway itself exits' },
} as const;
type Exit = keyof typeof EXIT;

function exitForStatus(status: number): Exit {
  if (status === 401 || status === 403) return 'denied';
  if (status === 404) return 'notFound';
  if (status === 409) return 'conflict';
  if (status === 429 || (status >= 502 && status <= 504)) return 'unavailable';
  if (status >= 400 && status < 500) return 'usage';
  return 'unexpected';
}

/** An invocation the CLI cannot run as given; nothing was sent or written. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose help answers it. */
    readonly topic = '',
  ) {
    super(message);
  }
}

interface Flag {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** The value's placeholder in help; absent for booleans. */
  readonly arg?: string;
  readonly help: string;
}

const GLOBAL_FLAGS = {
  json: { type: 'boolean', help: "print exactly the admin API's JSON on stdout; errors as {\"error\":{…}} on stderr" },
  url: { type: 'string', arg: 'URL', help: "work through this gateway's admin API (or GATEWAY_URL); else directly on the store" },
  token: { type: 'string', arg: 'TOKEN', help: 'admin token for --url (prefer ADMIN_TOKEN: arguments are visible to ps)' },
  help: { type: 'boolean', short: 'h', help: 'show help for the command' },
} as const satisfies Record<string, Flag>;

const QUOTA_FIELDS = {
  rpm: 'requests_per_minute',
  'max-concurrent': 'max_concurrent_jobs',
  'seconds-per-day': 'video_seconds_per_day',
  'seconds-per-month': 'video_seconds_per_month',
  'max-seconds-per-video': 'max_seconds_per_video',
  'retention-days': 'video_retention_days',
} as const satisfies Record<string, keyof QuotaPolicy>;
/** Budgets in US dollars (§10): decimals, to the micro-dollar. */
const MONEY_FIELDS = {
  'usd-per-day': 'usd_per_day',
  'usd-per-month': 'usd_per_month',
} as const satisfies Record<string, keyof QuotaPolicy>;
const USD = /^\d+(\.\d{1,6})?$/;

const QUOTA_FLAGS = {
  ...(Object.fromEntries(Object.entries(QUOTA_FIELDS).map(([flag, field]) => [flag, { type: 'string', arg: 'N', help: field }])) as Record<
    keyof typeof QUOTA_FIELDS,
    Flag
  >),
  ...(Object.fromEntries(Object.entries(MONEY_FIELDS).map(([flag, field]) => [flag, { type: 'string', arg: 'USD', help: field }])) as Record<
    keyof typeof MONEY_FIELDS,
    Flag
  >),
  models: { type: 'string', arg: 'a,b', help: 'models (allow-list of model names or aliases)' },
  quota: { type: 'string', arg: 'JSON', help: 'the whole policy as JSON; the flags above override its fields' },
} as const satisfies Record<string, Flag>;

const FLAGS = {
  ...GLOBAL_FLAGS,
  ...QUOTA_FLAGS,
  name: { type: 'string', arg: 'NAME', help: 'a display name' },
  'expires-at': { type: 'string', arg: 'WHEN', help: 'expiry: ISO-8601 date or Unix seconds' },
  days: { type: 'string', arg: 'N', help: 'add `daily` usage for the last N days (1-366)' },
  'by-model': { type: 'boolean', help: 'add `by_model`: the day and the month per model' },
  events: { type: 'string', arg: 'a,b', help: 'event types: video.completed, video.failed (the default), budget.threshold' },
  disabled: { type: 'boolean', help: 'keep the endpoint but send it nothing (events are not queued meanwhile)' },
  limit: { type: 'string', arg: 'N', help: 'how many of the most recent (1-100, default 20)' },
  to: { type: 'string', arg: 'URL', help: 'the PostgreSQL database to copy into (default: DATABASE_URL, which ps does not show)' },
  from: { type: 'string', arg: 'DIR', help: 'the DATA_DIR of the embedded store to copy (default: DATA_DIR, else ./data)' },
} as const satisfies Record<string, Flag>;
type FlagName = keyof typeof FLAGS;
type Values = Partial<Record<FlagName, string | boolean>>;

interface CommandBase {
  /** One or two words, as typed. */
  readonly name: string;
  readonly args: readonly string[];
  readonly flags: readonly FlagName[];
  readonly summary: string;
  readonly details?: string;
  /** Said on stderr after the human-readable output. */
  readonly notice?: string;
}
/** An admin operation, run through whichever backend (--url or the store) the invocation chose. */
interface AdminCommand extends CommandBase {
  run(ops: AdminOps, args: readonly string[], v: Values): Promise<unknown>;
}
/** A command that opens the stores it works on itself; --url does not apply to it. */
interface StoreCommand extends CommandBase {
  runOnStores(v: Values, env: NodeJS.ProcessEnv): Promise<unknown>;
}
type Command = AdminCommand | StoreCommand;

const QUOTA_FLAG_NAMES = Object.keys(QUOTA_FLAGS) as FlagName[];

function quotaFrom(v: Values): QuotaPolicy | undefined {
  let quota: Record<string, unknown> | undefined;
  if (typeof v.quota === 'string') {
    try {
      quota = JSON.parse(v.quota) as Record<string, unknown>;
    } catch {
      quota = undefined;
    }
    if (!quota || typeof quota !== 'object' || Array.isArray(quota)) {
      throw new UsageError('--quota takes a JSON object, e.g. --quota \'{"requests_per_minute":60}\'');
    }
  }
  for (const [flag, field] of Object.entries(QUOTA_FIELDS)) {
    const value = v[flag as FlagName];
    if (typeof value !== 'string') continue;
    if (!/^\d+$/.test(value)) throw new UsageError(`--${flag} takes a whole number, not '${value}'`);
    (quota ??= {})[field] = Number(value);
  }
  for (const [flag, field] of Object.entries(MONEY_FIELDS)) {
    const value = v[flag as FlagName];
    if (typeof value !== 'string') continue;
    if (!USD.test(value)) throw new UsageError(`--${flag} takes US dollars, e.g. 25 or 12.50, not '${value}'`);
    (quota ??= {})[field] = Number(value);
  }
  if (typeof v.models === 'string') (quota ??= {}).models = v.models.split(',').map((m) => m.trim()).filter(Boolean);
  return quota as QuotaPolicy | undefined;
}

function expiresAt(v: string | boolean | undefined): number | undefined {
  if (typeof v !== 'string') return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw new UsageError(`--expires-at: '${v}' is neither Unix seconds nor an ISO-8601 date`);
  return Math.floor(ms / 1000);
}

/** The request body of a create or update: only what was given, so an update leaves the rest alone. */
function teamBody(v: Values) {
  const quota = quotaFrom(v);
  return { ...(typeof v.name === 'string' ? { name: v.name } : {}), ...(quota ? { quota } : {}) };
}

export const COMMANDS: readonly Command[] = [
  { name: 'teams list', args: [], flags: [], summary: 'list the teams and their policies', run: (ops) => ops.listTeams() },
  {
    name: 'teams create',
    args: ['team'],
    flags: ['name', ...QUOTA_FLAG_NAMES],
    summary: 'create a team (id: 1-64 letters, digits, dots, dashes, underscores)',
    run: (ops, [id], v) => ops.createTeam({ id, ...teamBody(v) }),
  },
  { name: 'teams get', args: ['team'], flags: [], summary: 'show one team', run: (ops, [id]) => ops.getTeam(id!) },
  {
    name: 'teams update',
    args: ['team'],
    flags: ['name', ...QUOTA_FLAG_NAMES],
    summary: "rename a team or replace its policy",
    details: 'Quota flags replace the whole policy (fields not given become unlimited); without them the policy stays.',
    run: (ops, [id], v) => ops.updateTeam(id!, teamBody(v)),
  },
  {
    name: 'teams delete',
    args: ['team'],
    flags: [],
    summary: 'delete a team: its keys are revoked and its id is never reused',
    run: (ops, [id]) => ops.deleteTeam(id!),
  },
  { name: 'keys list', args: ['team'], flags: [], summary: "list a team's keys (never their secrets)", run: (ops, [team]) => ops.listKeys(team!) },
  {
    name: 'keys issue',
    args: ['team'],
    flags: ['name', 'expires-at', ...QUOTA_FLAG_NAMES],
    summary: 'issue a key for a team; the secret is printed this once',
    details: "A key's own policy applies on top of its team's: both must admit a request.",
    notice: 'The key is shown only this once: store it now.',
    run: (ops, [team], v) => {
      const exp = expiresAt(v['expires-at']);
      return ops.issueKey(team!, { ...teamBody(v), ...(exp !== undefined ? { expires_at: exp } : {}) });
    },
  },
  {
    name: 'keys revoke',
    args: ['key-id'],
    flags: [],
    summary: 'revoke a key',
    details: 'Through --url the gateway refuses the key from its next request; directly on the store, a running gateway refuses it once its key cache (KEY_CACHE_MS) expires.',
    run: (ops, [id]) => ops.revokeKey(id!),
  },
  {
    name: 'webhook set',
    args: ['team', 'endpoint-url'],
    flags: ['events', 'disabled'],
    summary: "create or replace a team's webhook endpoint; a new one's secret is printed this once",
    details:
      'Replacing keeps the secret. The url must be https, or http on a host listed in WEBHOOK_ALLOWED_HOSTS; private, loopback and link-local addresses are refused unless listed.',
    notice: 'A secret, when shown, is shown only this once: store it now.',
    run: (ops, [team, url], v) =>
      ops.setWebhook(team!, {
        url,
        ...(typeof v.events === 'string' ? { events: v.events.split(',').map((e) => e.trim()).filter(Boolean) } : {}),
        enabled: v.disabled !== true,
      }),
  },
  { name: 'webhook get', args: ['team'], flags: [], summary: "show a team's webhook endpoint (never its secret)", run: (ops, [team]) => ops.getWebhook(team!) },
  { name: 'webhook delete', args: ['team'], flags: [], summary: "delete a team's webhook endpoint", run: (ops, [team]) => ops.deleteWebhook(team!) },
  {
    name: 'webhook rotate-secret',
    args: ['team'],
    flags: [],
    summary: 'give the endpoint a new signing secret, printed this once; the old one keeps signing for 24 hours',
    notice: 'The new secret is shown only this once: store it now.',
    run: (ops, [team]) => ops.rotateWebhookSecret(team!),
  },
  {
    name: 'webhook deliveries',
    args: ['team'],
    flags: ['limit'],
    summary: "a team's recent webhook deliveries: attempts, last status and error, next retry",
    run: (ops, [team], v) => ops.listWebhookDeliveries(team!, typeof v.limit === 'string' ? { limit: v.limit } : {}),
  },
  {
    name: 'webhook replay',
    args: ['team', 'delivery-id'],
    flags: [],
    summary: 'send a delivery again now, with a fresh set of attempts and the same event id',
    run: (ops, [team, id]) => ops.replayWebhookDelivery(team!, id!),
  },
  {
    name: 'usage',
    args: ['team'],
    flags: ['days', 'by-model'],
    summary: "a team's usage today and this month (video-seconds and US dollars), active jobs, and its policy",
    run: (ops, [team], v) => ops.usage(team!, { ...(typeof v.days === 'string' ? { days: v.days } : {}), ...(v['by-model'] === true ? { by: 'model' } : {}) }),
  },
  {
    name: 'videos',
    args: ['team'],
    flags: ['limit'],
    summary: "a team's newest videos with their stored copies (stored, pending, retrying, failed, removed) and when they expire",
    run: (ops, [team], v) => ops.listVideos(team!, typeof v.limit === 'string' ? { limit: v.limit } : {}),
  },
  {
    name: 'storage',
    args: [],
    flags: [],
    summary: 'stored results: where copies go, stored videos and bytes, copies pending and failed (all replicas)',
    run: (ops) => ops.storage(),
  },
  {
    name: 'upstreams',
    args: [],
    flags: [],
    summary: "the running gateway's upstreams: kind, models, breaker, keys by fingerprint and their cool-downs, active jobs, recent errors and latency",
    details: 'Needs --url (or GATEWAY_URL): this state lives in the gateway process, not in the store.',
    run: (ops) => ops.upstreams(),
  },
  {
    name: 'migrate-sqlite',
    args: [],
    flags: ['to', 'from'],
    summary: 'copy an embedded (SQLite) store into PostgreSQL: teams, keys, jobs, usage and webhooks',
    details:
      'Everything is copied in one transaction: teams (deleted ones stay deleted), keys as hashes (they keep ' +
      'working, none is re-issued; revoked ones stay revoked), jobs in every state, usage counters, webhook ' +
      'endpoints with their secrets (receivers verify as before) and webhook deliveries (pending ones are sent ' +
      'from PostgreSQL, once; the history stays listed). Records ' +
      'already in the database are left as they are, so running it again copies only what is missing and never ' +
      'counts anything twice. Stop the gateway on DATA_DIR first, so that nothing it does afterwards is left behind.',
    notice: 'Start the gateways with DATABASE_URL set to this database; the embedded store was left unchanged.',
    runOnStores: (v, env) => {
      if (v.url !== undefined || v.token !== undefined) throw new UsageError('migrate-sqlite works on the two stores directly and takes no --url or --token', 'migrate-sqlite');
      const config = loadConfig(env);
      const to = typeof v.to === 'string' ? v.to : config.databaseUrl;
      if (to === undefined) throw new UsageError('migrate-sqlite: missing --to postgres://… (or DATABASE_URL)', 'migrate-sqlite');
      // Never echoed: the URL may hold a password.
      if (!/^postgres(ql)?:\/\//.test(to) || !URL.canParse(to)) throw new UsageError('--to must be a postgres:// or postgresql:// URL', 'migrate-sqlite');
      return migrateSqlite(typeof v.from === 'string' ? v.from : config.dataDir, to, config.database);
    },
  },
];

const BIN = 'grok-gateway';
const pad = (rows: string[][]) => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
};
const flagLabel = (name: FlagName) => {
  const f: Flag = FLAGS[name];
  return `${f.short ? `-${f.short}, ` : ''}--${name}${f.arg ? ` ${f.arg}` : ''}`;
};
const flagRows = (names: readonly FlagName[]) => pad(names.map((n) => [`  ${flagLabel(n)}`, FLAGS[n].help]));
const synopsis = (c: Command) => `${BIN} ${c.name}${c.args.map((a) => ` <${a}>`).join('')}${c.flags.length ? ' [options]' : ''}`;

const GLOBAL_HELP = `global options (every command):
${flagRows(Object.keys(GLOBAL_FLAGS) as FlagName[])}

Without --url (and GATEWAY_URL) the CLI works directly on the gateway's store (DATA_DIR, default ./data):
a key revoked that way is refused by a running gateway once its key cache (KEY_CACHE_MS) expires; through
--url the gateway drops it at once.`;

function commandHelp(c: Command): string {
  return [
    `usage: ${synopsis(c)}`,
    '',
    `${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.${c.details ? ` ${c.details}` : ''}`,
    ...(c.flags.length ? ['', 'options:', flagRows(c.flags)] : []),
    '',
    GLOBAL_HELP,
  ].join('\n');
}

function overview(commands: readonly Command[] = COMMANDS): string {
  return [
    `usage: ${BIN} <command> [options]        ${BIN} help <command>        ${BIN} <command> --help`,
    '',
    'commands:',
    pad(commands.map((c) => [`  ${synopsis(c)}`, c.summary])),
    '',
    GLOBAL_HELP,
    '',
    'exit status:',
    pad(Object.values(EXIT).map((e) => [`  ${e.code}`, e.meaning])),
  ].join('\n');
}

const isGroup = (word: string | undefined) => word !== undefined && COMMANDS.some((c) => c.name.startsWith(`${word} `));
const findCommand = (words: readonly string[]) =>
  COMMANDS.find((c) => c.name.split(' ').every((w, i) => words[i] === w));

/** Human-readable output: lists as tables, objects as aligned fields; Unix-second timestamps as dates. */
function formatValue(key: string, value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (key.endsWith('_at') && typeof value === 'number') return new Date(value * 1000).toISOString().replace('.000Z', 'Z');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function table(items: readonly Record<string, unknown>[]): string {
  if (items.length === 0) return '(none)';
  const cols = Object.keys(items[0]!).filter((k) => k !== 'object');
  return pad([cols, ...items.map((item) => cols.map((k) => formatValue(k, item[k])))]);
}

function human(result: unknown): string {
  const r = result as Record<string, unknown>;
  if (r.object === 'list' && Array.isArray(r.data)) return table(r.data as Record<string, unknown>[]);
  // A list of objects is printed as a table below the fields; a list of words, as a field.
  const isTable = (v: unknown) => Array.isArray(v) && v.some((x) => typeof x === 'object' && x !== null);
  const fields = Object.entries(r)
    .filter(([k, v]) => k !== 'object' && !isTable(v))
    .map(([k, v]): [string, unknown] => [k, Array.isArray(v) ? v.join(', ') : v]);
  const lists = Object.entries(r).filter(([, v]) => isTable(v));
  return [
    pad(fields.map(([k, v]) => [`${k}:`, formatValue(k, v)])),
    ...lists.map(([k, v]) => `${k}:\n${table(v as Record<string, unknown>[]).replace(/^/gm, '  ')}`),
  ].join('\n');
}

export interface CliIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

const processIo: CliIo = {
  env: process.env,
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

const blank = (s: string | undefined) => (s?.trim() ? s.trim() : undefined);

function openBackend(v: Values, env: NodeJS.ProcessEnv): Promise<AdminBackend> | AdminBackend {
  const url = (typeof v.url === 'string' ? v.url : undefined) ?? blank(env.GATEWAY_URL);
  const token = typeof v.token === 'string' ? v.token : undefined;
  if (url === undefined) {
    if (token !== undefined) throw new UsageError('--token needs --url (or GATEWAY_URL): directly on the store no token is used');
    return directBackend(loadConfig(env));
  }
  if (!/^https?:\/\/[^/]/.test(url) || !URL.canParse(url)) throw new UsageError(`--url / GATEWAY_URL must be an http(s) URL, not '${url}'`);
  return httpBackend(url, token ?? blank(env.ADMIN_TOKEN));
}

interface Parsed {
  readonly command: Command | undefined;
  readonly args: readonly string[];
  readonly values: Values;
  /** What `--help` / `help …` should print, if asked. */
  readonly help: string | undefined;
}

function parse(argv: readonly string[]): Parsed {
  const options = Object.fromEntries(
    Object.entries(FLAGS).map(([k, f]: [string, Flag]) => [k, { type: f.type, ...(f.short ? { short: f.short } : {}) }]),
  ) as Record<string, { type: 'string' | 'boolean'; short?: string }>;
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values = parsed.values as Values;
  const words = parsed.positionals;
  const asksHelp = words[0] === 'help';
  const topic = asksHelp ? words.slice(1) : words;
  const command = findCommand(topic);
  if (!command) {
    const group = isGroup(topic[0]) && topic.length === 1 ? COMMANDS.filter((c) => c.name.startsWith(`${topic[0]} `)) : undefined;
    if (asksHelp || values.help) {
      if (topic.length === 0) return { command, args: [], values, help: overview() };
      if (group) return { command, args: [], values, help: overview(group) };
    }
    if (group) throw new UsageError(`'${topic[0]}' needs one of: ${group.map((c) => c.name.split(' ')[1]).join(', ')}`, topic[0]);
    throw new UsageError(topic.length ? `unknown command '${topic.join(' ')}'` : 'no command given');
  }
  if (asksHelp || values.help) return { command, args: [], values, help: commandHelp(command) };
  const args = topic.slice(command.name.split(' ').length);
  if (args.length < command.args.length) throw new UsageError(`${command.name}: missing <${command.args[args.length]}>`, command.name);
  if (args.length > command.args.length) throw new UsageError(`${command.name}: unexpected argument '${args[command.args.length]}'`, command.name);
  const stray = (Object.keys(values) as FlagName[]).find((f) => !(f in GLOBAL_FLAGS) && !command.flags.includes(f));
  if (stray) throw new UsageError(`${command.name} does not take --${stray}`, command.name);
  return { command, args, values, help: undefined };
}

/** Every failure as one OpenAI-shaped error and the exit status that says what failed. */
function failure(err: unknown): { exit: Exit; error: ApiError } {
  if (err instanceof ApiError) return { exit: exitForStatus(err.status), error: err };
  if (err instanceof UsageError) return { exit: 'usage', error: invalidRequest(err.message, null, 'usage_error') };
  if (err instanceof ConfigError) {
    return { exit: 'config', error: new ApiError({ status: 500, type: 'server_error', code: 'invalid_configuration', message: err.message }) };
  }
  return { exit: 'unexpected', error: new ApiError({ status: 500, type: 'server_error', code: 'internal_error', message: (err as Error).message }) };
}

/** Runs one invocation and returns its exit status; it never throws. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const json = argv.includes('--json');
  let backend: AdminBackend | undefined;
  try {
    const { command, args, values, help } = parse(argv);
    if (help !== undefined || !command) {
      io.stdout(`${help}\n`);
      return EXIT.ok.code;
    }
    let result: unknown;
    if ('runOnStores' in command) {
      result = await command.runOnStores(values, io.env);
    } else {
      backend = await openBackend(values, io.env);
      result = await command.run(backend.ops, args, values);
    }
    if (values.json) {
      io.stdout(`${JSON.stringify(result)}\n`);
    } else {
      io.stdout(`${human(result)}\n`);
      if (command.notice) io.stderr(`${command.notice}\n`);
    }
    return EXIT.ok.code;
  } catch (err) {
    const { exit, error } = failure(err);
    if (json) io.stderr(`${JSON.stringify(toErrorBody(error))}\n`);
    // A wrong environment reads as the gateway's own refusal to start (config.ts exitForConfigError).
    else if (exit === 'config') io.stderr(`${BIN}: ${error.message}\n`);
    else io.stderr(`error: ${error.message}${error.param ? ` (${error.param})` : ''}${err instanceof UsageError ? `\nsee: ${BIN} help${err.topic ? ` ${err.topic}` : ''}` : ''}\n`);
    return EXIT[exit].code;
  } finally {
    await backend?.close();
  }
}
