import { parseArgs } from 'node:util';
import { AdminService } from './service.js';
import { loadConfig } from '../config.js';
import { systemClock, type QuotaPolicy } from '../quota/policy.js';
import { SqliteStore } from '../store/sqlite.js';
import { ModelCatalog } from '../videos/models.js';

/**
 * The operator CLI: the admin API's operations for people at a shell, run against the same store the
 * gateway uses (DATA_DIR). Every command prints JSON, so it composes with jq.
 */
export const USAGE = `usage: grok-gateway <command> [options]

  teams create <id> [--name N] [quota options]
  teams list
  teams show <id>
  teams update <id> [--name N] [quota options]     (quota options replace the team's policy)
  teams delete <id>
  keys issue <team> [--name N] [--expires-at ISO-8601|unix-seconds] [quota options]
  keys list <team>
  keys revoke <key-id>
  usage <team> [--days N]

quota options:
  --rpm N                requests_per_minute
  --concurrent N         max_concurrent_jobs
  --day-seconds N        video_seconds_per_day (UTC day)
  --month-seconds N      video_seconds_per_month (UTC month)
  --max-seconds N        max_seconds_per_video
  --models a,b           models (allow-list)
  --quota JSON           the whole policy as JSON

The store is the one in DATA_DIR (default ./data). A key revoked here is refused by a running gateway
once its key cache (KEY_CACHE_MS, default 30 s) expires; the admin API revokes at once.`;

const QUOTA_FLAGS: Record<string, keyof QuotaPolicy> = {
  rpm: 'requests_per_minute',
  concurrent: 'max_concurrent_jobs',
  'day-seconds': 'video_seconds_per_day',
  'month-seconds': 'video_seconds_per_month',
  'max-seconds': 'max_seconds_per_video',
};

type Values = Record<string, string | boolean | undefined>;

function quotaFrom(values: Values): QuotaPolicy | undefined {
  let quota: Record<string, unknown> | undefined;
  if (typeof values.quota === 'string') {
    try {
      quota = JSON.parse(values.quota) as Record<string, unknown>;
    } catch {
      throw new UsageError('--quota must be JSON, e.g. --quota \'{"requests_per_minute":60}\'');
    }
  }
  for (const [flag, field] of Object.entries(QUOTA_FLAGS)) {
    const v = values[flag];
    if (typeof v === 'string') (quota ??= {})[field] = Number(v);
  }
  if (typeof values.models === 'string') (quota ??= {}).models = values.models.split(',').map((m) => m.trim()).filter(Boolean);
  return quota as QuotaPolicy | undefined;
}

function expiresAt(v: string | boolean | undefined): number | undefined {
  if (typeof v !== 'string') return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw new UsageError(`--expires-at: '${v}' is neither unix seconds nor an ISO-8601 date`);
  return Math.floor(ms / 1000);
}

export class UsageError extends Error {}

export async function runCli(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      quota: { type: 'string' },
      models: { type: 'string' },
      'expires-at': { type: 'string' },
      days: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...Object.fromEntries(Object.keys(QUOTA_FLAGS).map((f) => [f, { type: 'string' as const }])),
    },
  });
  const [group, verb, arg] = positionals;
  if (values.help || !group) {
    out(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const config = loadConfig();
  const store = SqliteStore.inDataDir(config.dataDir);
  const admin = new AdminService(store, systemClock, new ModelCatalog(config.models, config.defaultModel));
  const need = (what: string) => {
    if (!arg) throw new UsageError(`missing ${what}`);
    return arg;
  };
  try {
    const quota = quotaFrom(values);
    const name = values.name;
    let result: unknown;
    switch (`${group} ${group === 'usage' ? '' : (verb ?? '')}`.trim()) {
      case 'teams create':
        result = await admin.createTeam({ id: need('team id'), ...(name !== undefined ? { name } : {}), ...(quota ? { quota } : {}) });
        break;
      case 'teams list':
        result = await admin.listTeams();
        break;
      case 'teams show':
        result = await admin.getTeam(need('team id'));
        break;
      case 'teams update':
        result = await admin.updateTeam(need('team id'), { ...(name !== undefined ? { name } : {}), ...(quota ? { quota } : {}) });
        break;
      case 'teams delete':
        result = await admin.deleteTeam(need('team id'));
        break;
      case 'keys issue': {
        const exp = expiresAt(values['expires-at']);
        result = await admin.issueKey(need('team id'), { ...(name !== undefined ? { name } : {}), ...(quota ? { quota } : {}), ...(exp !== undefined ? { expires_at: exp } : {}) });
        break;
      }
      case 'keys list':
        result = await admin.listKeys(need('team id'));
        break;
      case 'keys revoke':
        result = await admin.revokeKey(need('key id'));
        break;
      case 'usage':
        if (!verb) throw new UsageError('missing team id');
        result = await admin.usage(verb, values.days !== undefined ? { days: values.days } : {});
        break;
      default:
        throw new UsageError(`unknown command: ${positionals.join(' ')}`);
    }
    out(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

