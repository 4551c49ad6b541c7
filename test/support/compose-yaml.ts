/**
 * A parser for the small part of YAML that docker-compose.yml uses, so that the compose test needs no YAML
 * package: block mappings and sequences by indentation, plain and quoted scalars, JSON-style flow sequences,
 * comments, one `&anchor` per mapping and `<<: *anchor` merges. Anything else throws, so a construct the
 * file starts to use fails the test loudly instead of being misread (the test also compares the result with
 * PyYAML's where that is installed).
 */
type Value = string | number | boolean | null | Value[] | { [key: string]: Value };
interface Line {
  readonly indent: number;
  readonly text: string;
  readonly no: number;
}

/** The line without its comment: a `#` at the start or after a space, outside quotes. */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '#' && (i === 0 || line[i - 1] === ' ')) return line.slice(0, i);
  }
  return line;
}

function scalar(raw: string, no: number): Value {
  const s = raw.trim();
  if (s.startsWith('"') || s.startsWith('[')) return JSON.parse(s) as Value;
  if (s.startsWith("'")) {
    if (!s.endsWith("'")) throw new Error(`line ${no}: unterminated quote`);
    return s.slice(1, -1).replace(/''/g, "'");
  }
  if (/^[{&*!|>%@`]/.test(s)) throw new Error(`line ${no}: unsupported YAML: ${s}`);
  if (s === '' || s === '~' || s === 'null') return null;
  if (s === 'true' || s === 'false') return s === 'true';
  if (/^-?\d+$/.test(s)) return Number(s);
  return s;
}

export function parseComposeYaml(text: string): Record<string, Value> {
  const lines: Line[] = [];
  text.split('\n').forEach((raw, i) => {
    if (/\t/.test(raw.match(/^\s*/)![0])) throw new Error(`line ${i + 1}: tab indentation`);
    const body = stripComment(raw).trimEnd();
    if (body.trim()) lines.push({ indent: body.length - body.trimStart().length, text: body.trim(), no: i + 1 });
  });
  const anchors = new Map<string, Record<string, Value>>();
  let at = 0;

  function block(indent: number): Value {
    const first = lines[at];
    if (!first || first.indent !== indent) throw new Error(`line ${first?.no ?? 'end'}: expected a block at indent ${indent}`);
    return first.text.startsWith('- ') ? sequence(indent) : mapping(indent);
  }

  function sequence(indent: number): Value[] {
    const out: Value[] = [];
    while (lines[at]?.indent === indent && lines[at]!.text.startsWith('- ')) {
      const line = lines[at++]!;
      const item = line.text.slice(2);
      if (/^[^"'[]*:( |$)/.test(item)) throw new Error(`line ${line.no}: unsupported YAML: mappings in sequences`);
      out.push(scalar(item, line.no));
    }
    return out;
  }

  function mapping(indent: number): Record<string, Value> {
    const out: Record<string, Value> = {};
    const merged: Record<string, Value> = {};
    while (lines[at]?.indent === indent) {
      const line = lines[at++]!;
      const m = /^("[^"]*"|'[^']*'|[^:]+?):(?: (.*))?$/.exec(line.text);
      if (!m) throw new Error(`line ${line.no}: unsupported YAML: ${line.text}`);
      const key = String(scalar(m[1]!, line.no));
      let rest = (m[2] ?? '').trim();
      if (key in out) throw new Error(`line ${line.no}: duplicate key ${key}`);
      if (key === '<<') {
        const anchor = anchors.get(rest.slice(1));
        if (!rest.startsWith('*') || !anchor) throw new Error(`line ${line.no}: unknown alias ${rest}`);
        Object.assign(merged, anchor);
        continue;
      }
      const anchor = /^&([\w-]+)$/.exec(rest)?.[1];
      if (anchor) rest = '';
      const nested = rest === '' && (lines[at]?.indent ?? -1) > indent;
      out[key] = nested ? block(lines[at]!.indent) : scalar(rest, line.no);
      if (anchor) {
        if (typeof out[key] !== 'object' || out[key] === null || Array.isArray(out[key])) throw new Error(`line ${line.no}: anchors only on mappings`);
        anchors.set(anchor, out[key] as Record<string, Value>);
      }
    }
    return { ...merged, ...out };
  }

  const doc = mapping(0);
  if (at !== lines.length) throw new Error(`line ${lines[at]!.no}: unexpected indentation`);
  return doc;
}
