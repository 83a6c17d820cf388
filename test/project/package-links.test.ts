/**
 * Issue 18 item 7: the documentation a user installs works where it is installed. Every relative
 * link of every Markdown file the tarball ships (README.md, docs/*.md, ...) points to a file
 * that is in the tarball, and package.json says where the repository, homepage and issues are.
 * `npm pack --dry-run` lists the files: nothing is written.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { ROOT } from '../support/cli.js';
import { packedFiles } from '../support/packed.js';

let files: string[];
before(async () => {
  files = await packedFiles();
});

/** The link targets of a Markdown text, outside fenced code blocks and inline code. */
function linkTargets(markdown: string): string[] {
  const text = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '').replace(/`[^`\n]*`/g, '');
  const inline = [...text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  const defined = [...text.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)].map((m) => m[1]!);
  const html = [...text.matchAll(/<a\s[^>]*href="([^"]+)"/g)].map((m) => m[1]!);
  return [...inline, ...defined, ...html];
}

/** The relative links of the packed Markdown files that name no file (or folder) of the tarball. */
function deadLinks(packed: readonly string[], read: (file: string) => string): string[] {
  const have = new Set(packed);
  const dirs = new Set(packed.flatMap((f) => f.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))));
  const dead: string[] = [];
  for (const doc of packed.filter((f) => f.endsWith('.md'))) {
    for (const target of linkTargets(read(doc))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue; // https:, mailto:, an anchor in the page
      const file = decodeURI(target.replace(/[?#].*$/, ''));
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(doc), file)).replace(/\/$/, '');
      if (!have.has(resolved) && !dirs.has(resolved)) dead.push(`${doc}: (${target}) -> ${resolved} is not in the tarball`);
    }
  }
  return dead;
}

const readRoot = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');

test('the tarball ships the docs README.md links to', () => {
  for (const f of ['README.md', 'docs/operations.md', 'docs/api.md', 'docs/cli.md', 'CHANGELOG.md', 'LICENSE']) assert.ok(files.includes(f), `${f} is in the tarball`);
  const docs = fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md'));
  assert.deepEqual(docs.filter((f) => !files.includes(`docs/${f}`)), [], 'every docs/*.md is packed');
});

test('every relative link in the packed Markdown files resolves to a file in the tarball', () => {
  const mds = files.filter((f) => f.endsWith('.md'));
  assert.ok(mds.includes('README.md') && mds.filter((f) => f.startsWith('docs/')).length >= 10, `the Markdown files checked: ${mds.join(', ')}`);
  assert.deepEqual(deadLinks(files, readRoot), []);
});

test('the check finds a dead link (it can fail)', () => {
  const read = (f: string) => (f === 'README.md' ? 'see [the guide](docs/missing.md), [ok](docs/api.md#x), [web](https://example.com/a.md), `[code](nope.md)`\n\n```md\n[in a block](nope2.md)\n```\n' : '');
  assert.deepEqual(deadLinks(['README.md', 'docs/api.md'], read), ['README.md: (docs/missing.md) -> docs/missing.md is not in the tarball']);
  assert.deepEqual(deadLinks(['docs/a.md', 'pki/README.md'], (f) => (f === 'docs/a.md' ? '[layout](../pki/README.md) [x](../src/a.ts)' : '')), ['docs/a.md: (../src/a.ts) -> src/a.ts is not in the tarball']);
});

test('package.json names the repository, homepage and issue tracker (npm shows them; relative links resolve against them)', () => {
  const pkg = JSON.parse(readRoot('package.json')) as { repository?: { type?: string; url?: string }; homepage?: string; bugs?: { url?: string } };
  assert.match(pkg.repository?.url ?? '', /^git\+https:\/\/github\.com\/[\w.-]+\/[\w.-]+\.git$/);
  const repo = pkg.repository!.url!.replace(/^git\+/, '').replace(/\.git$/, '');
  assert.equal(pkg.homepage, `${repo}#readme`);
  assert.equal(pkg.bugs?.url, `${repo}/issues`);
});
