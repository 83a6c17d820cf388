/**
 * Issue 18 item 6: the README's quick start is one story that runs as written, top to bottom,
 * from a fresh folder with the packed package. The test reads README.md itself: every block
 * marked `<!-- readme-story: run -->` (shell) or `<!-- readme-story: save FILE -->` (a file the
 * story writes) is taken in order, so the README cannot drift from what runs.
 *
 * In a `run` block each line is one command, run with bash in the project folder:
 *   - `CMD &` starts a background process (stopped at the end), awaited until it prints what its
 *     `# prints: TEXT` comment says;
 *   - `CMD  # prints: TEXT` must exit 0 and print TEXT; `CMD  # fails with: TEXT` must exit
 *     non-zero and print TEXT (retried for up to 30 s while it still succeeds: the server applies
 *     a new CRL within 3 s on an idle machine, later on a busy one);
 *   - any other command must exit 0.
 * The only changes to what the README says: `npm install mcp-mtls ...` installs the tarball of
 * this checkout (and the other packages at this checkout's versions, from npm's cache), and the
 * port 8443 is replaced by a free one.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, run, tmpDir, type RunResult } from '../support/cli.js';
import { pack, packedEnv, pinned, type Packed } from '../support/packed.js';

interface StoryBlock {
  readonly kind: 'run' | 'save';
  readonly file?: string;
  readonly body: string;
  readonly line: number;
}

/** The marked blocks of a Markdown text, in order. */
export function storyBlocks(markdown: string): StoryBlock[] {
  const blocks: StoryBlock[] = [];
  for (const m of markdown.matchAll(/<!-- readme-story: (run|save ([^\s>]+)) -->[ \t]*\n```[\w-]*\n([\s\S]*?)^```/gm)) {
    const line = markdown.slice(0, m.index).split('\n').length;
    blocks.push(m[1] === 'run' ? { kind: 'run', body: m[3]!, line } : { kind: 'save', file: m[2]!, body: m[3]!, line });
  }
  return blocks;
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

let work: string;
let packed: Packed;
const background: ChildProcess[] = [];

before(async () => {
  work = tmpDir('mcp-mtls-packed-story-');
  packed = await pack(work);
});
after(() => {
  for (const p of background) if (p.exitCode === null && p.pid) process.kill(-p.pid, 'SIGTERM');
  fs.rmSync(work, { recursive: true, force: true });
});

test('the README marks its story: setup, CA and certificates, server, policy, client, revocation', () => {
  const blocks = storyBlocks(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
  const saved = blocks.filter((b) => b.kind === 'save').map((b) => b.file);
  assert.deepEqual(saved, ['server.js', 'policy.yaml', 'client.js']);
  const commands = blocks.filter((b) => b.kind === 'run').map((b) => b.body).join('');
  for (const needed of [/npm pkg set type=module/, /npm install mcp-mtls /, /mcp-mtls ca init/, /mcp-mtls issue server/, /mcp-mtls issue client/, /mcp-mtls bundle /, /node server\.js &/, /node client\.js/, /mcp-mtls revoke /, /# fails with: .*certificate_revoked/]) {
    assert.match(commands, needed);
  }
});

test("the README's story runs as written from a fresh folder with the packed package", { timeout: 900_000 }, async (t) => {
  const port = String(await freePort());
  const dir = path.join(work, 'story');
  fs.mkdirSync(dir);
  const env = packedEnv();
  const blocks = storyBlocks(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')).map((b) => ({ ...b, body: b.body.replaceAll('8443', port) }));
  const transcript: string[] = [];
  const started = Date.now();

  const sh = (command: string): Promise<RunResult> => run('bash', ['-c', command], { cwd: dir, env });
  const npmInstall = (command: string) => {
    const m = /^npm install mcp-mtls((?:\s+[@\w/.-]+)*)\s*$/.exec(command);
    if (!m) return command;
    const others = m[1]!.trim().split(/\s+/).filter(Boolean);
    return `npm install --prefer-offline --no-audit --no-fund ${packed.tarball} ${others.map(pinned).join(' ')}`;
  };

  for (const block of blocks) {
    if (block.kind === 'save') {
      fs.writeFileSync(path.join(dir, block.file!), block.body);
      transcript.push(`(saved ${block.file}, README line ${block.line})`);
      continue;
    }
    for (const raw of block.body.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'))) {
      const m = /^(.*?)(?:\s+#\s*(prints|fails with):\s*(.*))?$/.exec(raw)!;
      const command = npmInstall(m[1]!.replace(/\s+#.*$/, '').trim());
      const [expect, text] = [m[2], m[3]?.trim()];
      const where = `README line ${block.line}: ${raw.trim()}`;
      if (command.endsWith('&')) {
        // a background process: its own process group, stopped in after()
        const child = spawn('bash', ['-c', `exec ${command.slice(0, -1).trim()}`], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
        background.push(child);
        let out = '';
        child.stdout!.on('data', (d) => (out += d));
        child.stderr!.on('data', (d) => (out += d));
        const deadline = Date.now() + 120_000;
        while (!(text ? out.includes(text) : out.length > 0) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        assert.ok(text ? out.includes(text) : child.exitCode === null, `${where}\nthe background process did not print ${JSON.stringify(text)} (exit ${child.exitCode}):\n${out}`);
        transcript.push(`$ ${command}\n${out.trim()}`);
        continue;
      }
      let r = await sh(command);
      if (expect === 'fails with') {
        for (const until = Date.now() + 30_000; r.code === 0 && Date.now() < until; ) {
          await new Promise((res) => setTimeout(res, 1000));
          r = await sh(command);
        }
      }
      const out = `${r.stdout}${r.stderr}`;
      transcript.push(`$ ${command}\n${out.trim().split('\n').slice(-4).join('\n')}`);
      if (expect === 'fails with') assert.notEqual(r.code, 0, `${where}\nexpected to fail, exited 0:\n${out}`);
      else assert.equal(r.code, 0, `${where}\nexited ${r.code}:\n${out.slice(-3000)}`);
      if (text) assert.ok(out.includes(text), `${where}\ndid not print ${JSON.stringify(text)}:\n${out.slice(-3000)}`);
    }
  }
  t.diagnostic(`the story ran in ${((Date.now() - started) / 1000).toFixed(1)} s:`);
  for (const l of transcript.join('\n').split('\n')) t.diagnostic(l);
});

test('the story parser reads the marks (it can fail)', () => {
  const md = 'x\n<!-- readme-story: run -->\n```sh\necho a\n```\n\n```sh\nnot marked\n```\n<!-- readme-story: save a.js -->\n```ts\nconsole.log(1)\n```\n';
  assert.deepEqual(storyBlocks(md), [
    { kind: 'run', body: 'echo a\n', line: 2 },
    { kind: 'save', file: 'a.js', body: 'console.log(1)\n', line: 10 },
  ]);
});
