/** The soak's summary: requests by kind and answer, the faults injected, the creates' fates, the checks. */
import type { Check } from './checks.js';
import type { KeyRecord } from './clients.js';
import type { Kind } from './http.js';

export interface Fault {
  /** Seconds since the traffic began. */
  readonly atS: number;
  readonly what: string;
  readonly detail: string;
}

export interface Summary {
  readonly title: string;
  readonly setup: readonly string[];
  readonly tally: ReadonlyMap<Kind, ReadonlyMap<string, number>>;
  readonly faults: readonly Fault[];
  readonly records: readonly KeyRecord[];
  readonly checks: readonly Check[];
  /** Per replica log, the warnings and errors it wrote, by message. */
  readonly logs: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

const KINDS: readonly Kind[] = ['create', 'replay', 'poll', 'download', 'list', 'admin'];
const cell = (s: string) => s.replace(/\|/g, '\\|');

function requests(tally: Summary['tally']): string[] {
  const rows = ['| kind | requests | 2xx | other answers |', '|---|---:|---:|---|'];
  for (const kind of KINDS) {
    const byLabel = tally.get(kind);
    if (!byLabel) continue;
    const total = [...byLabel.values()].reduce((a, b) => a + b, 0);
    const ok = [...byLabel].filter(([l]) => /^2\d\d$/.test(l)).reduce((a, [, n]) => a + n, 0);
    const other = [...byLabel].filter(([l]) => !/^2\d\d$/.test(l)).sort((a, b) => b[1] - a[1]).map(([l, n]) => `${l} ×${n}`);
    rows.push(`| ${kind} | ${total} | ${ok} | ${cell(other.join(', ') || '—')} |`);
  }
  return rows;
}

function creates(records: readonly KeyRecord[]): string[] {
  const n = (f: (r: KeyRecord) => boolean) => records.filter(f).length;
  const attempts = records.map((r) => r.attempts);
  const retried = records.filter((r) => r.attempts > 1);
  const refusals = new Map<string, number>();
  for (const r of records.filter((x) => x.outcome !== 'video')) refusals.set(`${r.outcome}: ${r.answers.at(-1)}`, (refusals.get(`${r.outcome}: ${r.answers.at(-1)}`) ?? 0) + 1);
  return [
    '| creates (one Idempotency-Key each) | |',
    '|---|---|',
    `| keys | ${records.length} (${n((r) => r.asksFailure)} asking the simulator for a failure) |`,
    `| answered with a video | ${n((r) => r.outcome === 'video')}: ${n((r) => r.followed === 'completed')} completed, ${n((r) => r.followed === 'failed')} failed |`,
    `| not answered with a video | ${cell([...refusals].map(([l, c]) => `${l} ×${c}`).join(', ') || '—')} |`,
    `| retried (same key) | ${retried.length} keys, ${retried.reduce((s, r) => s + r.attempts - 1, 0)} retries, at most ${Math.max(0, ...attempts)} attempts for one key |`,
    `| deliberate repeats of an answered key | ${records.reduce((s, r) => s + r.replays, 0)}, ${records.reduce((s, r) => s + r.replayedHeader, 0)} answered \`idempotent-replayed: true\` |`,
  ];
}

function logs(byReplica: Summary['logs']): string[] {
  const rows = ['| replica log | warnings and errors, by message |', '|---|---|'];
  for (const [name, byMsg] of byReplica) {
    const top = [...byMsg].sort((a, b) => b[1] - a[1]).map(([m, c]) => `${m} ×${c}`);
    rows.push(`| ${name} | ${cell(top.join('; ') || '—')} |`);
  }
  return rows;
}

export function markdown(s: Summary): string {
  const failed = s.checks.filter((c) => !c.ok).length;
  return [
    `### ${s.title}`,
    '',
    ...s.setup.map((l) => `- ${l}`),
    '',
    ...requests(s.tally),
    '',
    '| at | fault | |',
    '|---:|---|---|',
    ...s.faults.map((f) => `| ${f.atS.toFixed(1)} s | ${cell(f.what)} | ${cell(f.detail)} |`),
    '',
    ...creates(s.records),
    '',
    '| check | | |',
    '|---|---|---|',
    ...s.checks.map((c) => `| ${cell(c.name)} | ${c.ok ? 'ok' : '**FAILED**'} | ${cell(c.detail)} |`),
    '',
    ...logs(s.logs),
    '',
    failed === 0 ? `All ${s.checks.length} checks held.` : `**${failed} of ${s.checks.length} checks failed.**`,
    '',
  ].join('\n');
}
