import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The README and docs/ are the contract a user relies on: every link in them leads somewhere, and every
 * environment variable the gateway reads is documented.
 */

const PAGES = ['README.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => join('docs', f)), 'bench/README.md'];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const text = markdown.replace(/^```[\s\S]*?^```/gm, '');
  for (const [, heading] of text.matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = heading!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

const links = (markdown: string) =>
  [...markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));

describe('documentation', () => {
  it.each(PAGES)('%s: every relative link names a file that exists, and an anchor that its page has', (page) => {
    const broken: string[] = [];
    for (const link of links(readFileSync(page, 'utf8'))) {
      const [path, anchor] = link.split('#') as [string, string | undefined];
      const target = path === '' ? page : normalize(join(dirname(page), path));
      if (!existsSync(target)) {
        broken.push(`${link} (no ${target})`);
        continue;
      }
      if (anchor !== undefined && statSync(target).isFile() && !anchors(readFileSync(target, 'utf8')).has(anchor)) {
        broken.push(`${link} (no heading #${anchor} in ${target})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('docs/configuration.md names every environment variable src/config.ts reads', () => {
    const source = readFileSync('src/config.ts', 'utf8');
    const schema = source.slice(source.indexOf('const envSchema = z.object({'), source.indexOf('\n});', source.indexOf('const envSchema')));
    const variables = [...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]!);
    expect(variables.length).toBeGreaterThan(30);
    const page = readFileSync('docs/configuration.md', 'utf8');
    expect(variables.filter((v) => !page.includes(`\`${v}\``))).toEqual([]);
  });

  it('points to nothing outside the repository', () => {
    for (const page of PAGES) expect(readFileSync(page, 'utf8'), page).not.toMatch(/shared\/design|\.\.\/shared/);
  });
});
