/** Results: the machine, the table of rows, the target checks, markdown, and the comparison with a previous run. */
import { cpus, release, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly node: string;
  readonly kernel: string;
  readonly memGiB: number;
}

export function machineInfo(): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // Not Linux: os.cpus() said enough.
  }
  return { cpu, cores: cpus().length, node: process.version, kernel: `Linux ${release()}`, memGiB: Math.round(totalmem() / 2 ** 30) };
}

export interface Row {
  readonly scenario: string;
  readonly measure: string;
  readonly unit: string;
  readonly gateway: number | null;
  readonly baseline: number | null;
  readonly direct: number | null;
  /** For comparisons: which way is better. */
  readonly better: 'higher' | 'lower';
  readonly gatewayPeakRssMb?: number | undefined;
}

export interface TargetCheck {
  readonly scenario: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean;
}

export interface Results {
  readonly schema: 1;
  readonly startedAt: string;
  readonly wallS: number;
  readonly machine: Machine;
  readonly settings: Record<string, string | number>;
  readonly rows: readonly Row[];
  readonly targets: readonly TargetCheck[];
  readonly details: Record<string, unknown>;
  /** A smoke run (BENCH_QUICK=1): its figures are not measurements and its targets are not judged. */
  readonly quick?: boolean;
}

function fmt(v: number | null | undefined, unit = ''): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const abs = Math.abs(v);
  const s = abs >= 1000 ? v.toFixed(0) : abs >= 100 ? v.toFixed(0) : abs >= 10 ? v.toFixed(1) : abs >= 1 ? v.toFixed(2) : v.toFixed(3);
  return unit ? `${s} ${unit}` : s;
}

/**
 * Below this, a memory figure is within what the kernel and V8 move on their own from one moment to the next:
 * dividing by it (or a percent change from it) says nothing.
 */
const MEMORY_NOISE_MIB = 1;
/** Run-to-run noise of rates on a shared 2-core machine; smaller changes are not labelled. */
const NOISE = 0.15;

const ratio = (a: number | null, b: number | null, unit = '') =>
  a === null || b === null || b === 0 || (unit === 'MiB' && Math.abs(b) < MEMORY_NOISE_MIB) ? null : a / b;

export function resultsMarkdown(r: Results): string {
  const m = r.machine;
  const lines = [
    `Run ${r.startedAt} in ${r.wallS.toFixed(0)} s on ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, ${m.kernel}, Node ${m.node}; ` +
      'gateway, baseline, fake upstream and load generator all share the machine (loopback).',
    '',
    `Settings: ${Object.entries(r.settings).map(([k, v]) => `${k}=${v}`).join(', ')}.`,
    '',
    'Columns: **GW ÷ baseline** and **GW ÷ direct** divide the gateway\'s figure by the other one; whether above 1 is ' +
      'good depends on the row (rates: higher is better; latency, CPU and memory: lower is better). "–" where a ' +
      `side has no such figure, or where a memory figure below ${MEMORY_NOISE_MIB} MiB would make the ratio noise. ` +
      '**GW peak RSS** is the gateway process\'s highest resident memory during that scenario.',
    '',
    '| # | Scenario | Measure | Gateway | Baseline | Direct | GW ÷ baseline | GW ÷ direct | GW peak RSS |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|',
    ...r.rows.map((row) => {
      const [num, ...rest] = row.scenario.split(' ');
      return `| ${num} | ${rest.join(' ')} | ${row.measure} | ${fmt(row.gateway, row.unit)} | ${fmt(row.baseline, row.unit)} | ${fmt(row.direct, row.unit)} | ${fmt(ratio(row.gateway, row.baseline, row.unit))} | ${fmt(ratio(row.gateway, row.direct, row.unit))} | ${row.gatewayPeakRssMb !== undefined ? fmt(row.gatewayPeakRssMb, 'MiB') : ''} |`;
    }),
    '',
    '| # | Target (1–5: issue 5; 6: issue 11) | Measured | Met |',
    '|---|---|---|---|',
    ...r.targets.map((t) => `| ${t.scenario} | ${t.target} | ${t.measured} | ${r.quick ? 'n/a (quick run)' : t.met ? 'yes' : '**no**'} |`),
  ];
  return lines.join('\n');
}

/** Gateway values and gateway ÷ baseline ratios of this run against the previous results.json. */
export function comparisonMarkdown(prev: Results, cur: Results): string {
  const byKey = new Map(prev.rows.map((row) => [`${row.scenario}|${row.measure}`, row]));
  const pct = (a: number, b: number) => (b === 0 ? '' : `${a >= b ? '+' : ''}${(((a - b) / b) * 100).toFixed(1)}%`);
  const lines = [
    `Against the previous run recorded in bench/results.json (${prev.startedAt}, ${prev.machine.cpu}, Node ${prev.machine.node}; ` +
      `on a fresh clone that is the run the authors committed). A change is labelled only beyond ${NOISE * 100}%, ` +
      'the run-to-run noise of this kind of machine; the ratios measured within each run are the sturdier comparison.',
    '',
    '| # | Scenario | Measure | Gateway before → now | Change | GW ÷ baseline before → now | |',
    '|---|---|---|---:|---:|---:|---|',
  ];
  for (const row of cur.rows) {
    const old = byKey.get(`${row.scenario}|${row.measure}`);
    if (!old || row.gateway === null || old.gateway === null) continue;
    // A percent change from a memory figure inside the noise says nothing.
    const fromNoise = row.unit === 'MiB' && Math.abs(old.gateway) < MEMORY_NOISE_MIB;
    const change = fromNoise ? '' : pct(row.gateway, old.gateway);
    const delta = old.gateway === 0 || fromNoise ? 0 : (row.gateway - old.gateway) / Math.abs(old.gateway);
    const verdict = Math.abs(delta) < NOISE ? '' : (delta > 0) === (row.better === 'higher') ? 'better' : 'worse';
    const rNow = ratio(row.gateway, row.baseline, row.unit);
    const rOld = ratio(old.gateway, old.baseline, row.unit);
    const [num, ...name] = row.scenario.split(' ');
    lines.push(
      `| ${num} | ${name.join(' ')} | ${row.measure} | ${fmt(old.gateway, row.unit)} → ${fmt(row.gateway, row.unit)} | ${change} | ${fmt(rOld)} → ${fmt(rNow)} | ${verdict} |`,
    );
  }
  const oldTargets = new Map(prev.targets.map((t) => [t.target, t.met]));
  const flips = cur.targets.filter((t) => oldTargets.has(t.target) && oldTargets.get(t.target) !== t.met);
  if (flips.length) {
    lines.push('', ...flips.map((t) => `- Target now ${t.met ? 'met' : 'MISSED'}: ${t.target} (${t.measured})`));
  }
  return lines.join('\n');
}
