/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function, inclusive time per
 * function, and self time per area (the gateway's code, each package, Node internals, GC, idle).
 * Run alone: `node --import tsx bench/profile.ts bench/out/profiles/<file>.cpuprofile`.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileEntry {
  readonly name: string;
  readonly where: string;
  readonly area: string;
  readonly selfMs: number;
  readonly selfPct: number;
  readonly totalMs: number;
  readonly totalPct: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  /** Time not idle: what the percentages below are shares of. */
  readonly busyMs: number;
  readonly top: readonly ProfileEntry[];
  readonly topInclusive: readonly ProfileEntry[];
  readonly areas: ReadonlyArray<{ area: string; selfMs: number; pct: number }>;
}

function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'program (native, unattributed)';
    return `native: ${functionName || '(anonymous)'}`;
  }
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const dist = /\/dist\/(.+)$/.exec(url);
  if (dist) return 'gateway (dist/)';
  return url;
}

function whereOf(frame: CallFrame): string {
  if (!frame.url) return '';
  const short = frame.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/');
  return `${short}:${frame.lineNumber + 1}`;
}

export function summariseProfile(file: string, topN = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const keyOf = (f: CallFrame) => `${f.functionName || '(anonymous)'}|${f.url}|${f.lineNumber}|${f.columnNumber}`;
  const self = new Map<string, { frame: CallFrame; us: number }>();
  const total = new Map<string, { frame: CallFrame; us: number }>();
  let totalUs = 0;
  let idleUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    totalUs += dt;
    if (node.callFrame.functionName === '(idle)') idleUs += dt;
    const k = keyOf(node.callFrame);
    const s = self.get(k) ?? { frame: node.callFrame, us: 0 };
    s.us += dt;
    self.set(k, s);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      const fk = keyOf(f);
      if (seen.has(fk) || f.functionName === '(root)') continue;
      seen.add(fk);
      const t = total.get(fk) ?? { frame: f, us: 0 };
      t.us += dt;
      total.set(fk, t);
    }
  }
  const busyUs = Math.max(1, totalUs - idleUs);
  const entry = (frame: CallFrame): ProfileEntry => {
    const k = keyOf(frame);
    const s = self.get(k)?.us ?? 0;
    const t = total.get(k)?.us ?? 0;
    return {
      name: frame.functionName || '(anonymous)',
      where: whereOf(frame),
      area: areaOf(frame),
      selfMs: s / 1000,
      selfPct: (100 * s) / busyUs,
      totalMs: t / 1000,
      totalPct: (100 * t) / busyUs,
    };
  };
  const notIdle = (e: { frame: CallFrame }) => e.frame.functionName !== '(idle)' && e.frame.functionName !== '(program)';
  const top = [...self.values()].filter((e) => e.frame.functionName !== '(idle)').sort((a, b) => b.us - a.us).slice(0, topN).map((e) => entry(e.frame));
  const topInclusive = [...total.values()]
    .filter((e) => notIdle(e) && e.frame.url !== '' && !/^(processTicksAndRejections|listOnTimeout|processTimers)$/.test(e.frame.functionName))
    .sort((a, b) => b.us - a.us)
    .slice(0, topN)
    .map((e) => entry(e.frame));
  const areas = new Map<string, number>();
  for (const { frame, us } of self.values()) {
    const a = areaOf(frame);
    if (a === 'idle') continue;
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  return {
    file,
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    top,
    topInclusive,
    areas: [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, selfMs: us / 1000, pct: (100 * us) / busyUs })),
  };
}

export function profileMarkdown(s: ProfileSummary): string {
  const f = (n: number) => n.toFixed(1);
  const lines = [
    `Profile \`${s.file.replace(/^.*\/bench\//, 'bench/')}\`: ${f(s.totalMs)} ms sampled, ${f(s.busyMs)} ms busy (percentages are of busy time).`,
    '',
    '| Self ms | Self % | Total % | Function | Where | Area |',
    '|---:|---:|---:|---|---|---|',
    ...s.top.map((e) => `| ${f(e.selfMs)} | ${f(e.selfPct)} | ${f(e.totalPct)} | \`${e.name}\` | ${e.where} | ${e.area} |`),
    '',
    '| Self time by area | % |',
    '|---|---:|',
    ...s.areas.slice(0, 15).map((a) => `| ${a.area}: ${f(a.selfMs)} ms | ${f(a.pct)} |`),
    '',
    '| Inclusive % | Function | Where |',
    '|---:|---|---|',
    ...s.topInclusive.map((e) => `| ${f(e.totalPct)} | \`${e.name}\` | ${e.where} |`),
  ];
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const file of process.argv.slice(2)) console.log(`${profileMarkdown(summariseProfile(file))}\n`);
}
