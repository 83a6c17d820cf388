/**
 * The folder store's token use files (src/ca/store/fs-tokens.ts): what is in tokens-used/ that
 * is not the store's own cannot stop revocation, enrollment or reads (found in review: one
 * malformed `<64 hex>.json` named for no token made every full read throw); uses are folded
 * into tokens.json whenever it is written anyway; and a dropped token is refused even to a
 * process still holding the tokens.json it parsed before the drop.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { revokePrincipal } from '../../src/ca/revocation.js';
import { FsStore } from '../../src/ca/store/fs-store.js';
import { createEnrollmentToken, enrollWithToken, TokenDirectory, TokenRefused } from '../../src/ca/tokens.js';
import { createCsr } from '../../src/x509/csr.js';
import { generateKey } from '../../src/x509/keys.js';
import { tmpDir } from '../support/cli.js';

const YEAR = 365 * 86_400_000;
const newCa = () => {
  const dir = path.join(tmpDir('token-files-'), 'pki');
  initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
  return { dir, ca: Authority.open(dir) };
};
const token = (ca: Authority, id: string) => createEnrollmentToken(ca, { kind: 'service', id, teams: [], roles: [], ttlMs: 3_600_000 });
const csr = () => createCsr(generateKey('ec-p256'), 'x');

test('files in tokens-used/ named for no token (malformed, a folder, a symlink) are not read: revocation, enrollment and lists go on', async () => {
  const { dir, ca } = newCa();
  const first = await token(ca, 'a');
  await enrollWithToken(ca, first.secret, csr());
  const victim = await token(ca, 'leaver');
  const later = await token(ca, 'b');
  const used = path.join(dir, 'tokens-used');
  fs.writeFileSync(path.join(used, `${'f'.repeat(64)}.json`), 'not json');
  fs.mkdirSync(path.join(used, `${'e'.repeat(64)}.json`));
  fs.symlinkSync('/etc/passwd', path.join(used, `${'d'.repeat(64)}.json`));
  fs.writeFileSync(path.join(used, '.0123456789abcdef.tmp'), 'a torn write');

  assert.equal((await ca.store.readTokens()).length, 3);
  assert.equal((await new TokenDirectory(ca.store).find(later.token.hash))?.id, later.token.id);
  const r = await revokePrincipal(ca, 'service/leaver', 'keyCompromise');
  assert.deepEqual(r.tokensDropped, [victim.token.id]);
  const { replayed } = await enrollWithToken(ca, later.secret, csr());
  assert.equal(replayed, false);
});

test("a token's own use file that is not a use (a symlink, garbage) fails closed, naming the file", async () => {
  const { dir, ca } = newCa();
  const t = await token(ca, 'a');
  fs.mkdirSync(path.join(dir, 'tokens-used'), { recursive: true });
  fs.symlinkSync('/etc/passwd', path.join(dir, 'tokens-used', `${t.token.hash}.json`));
  await assert.rejects(enrollWithToken(ca, t.secret, csr()), (e: Error & { code?: string }) => e.code === 'STORE_CORRUPT' && e.message.includes(`tokens-used/${t.token.hash}.json cannot be read as a token's use (ELOOP)`));
});

test('uses are folded into tokens.json when a token is made (their files go): a reader of tokens.json alone sees them', async () => {
  const { dir, ca } = newCa();
  const a = await token(ca, 'a');
  const b = await token(ca, 'b');
  await enrollWithToken(ca, a.secret, csr());
  await enrollWithToken(ca, b.secret, csr());
  const files = () => fs.readdirSync(path.join(dir, 'tokens-used')).filter((f) => f.endsWith('.json'));
  assert.equal(files().length, 2);
  await token(ca, 'c');
  assert.deepEqual(files(), []);
  const listed = JSON.parse(fs.readFileSync(path.join(dir, 'tokens.json'), 'utf8')) as { id: string; usedAt?: string; usedFor?: string }[];
  for (const t of [a, b]) assert.ok(listed.find((x) => x.id === t.token.id)?.usedFor, `${t.token.id} is used in tokens.json`);
  // still used: another key is refused, the same key is replayed
  await assert.rejects(enrollWithToken(ca, a.secret, csr()), (e) => e instanceof TokenRefused && e.reason === 'used');
});

test('a token dropped by revoke --principal is refused where tokens.json still lists it (a process holding the list of before the drop, or the file put back)', async () => {
  const { dir, ca } = newCa();
  const t = await token(ca, 'leaver');
  const server = new FsStore(dir); // a long-running process (ca serve): it parses tokens.json once
  assert.equal((await server.readTokens()).length, 1);
  const before = fs.readFileSync(path.join(dir, 'tokens.json'));
  await revokePrincipal(ca, 'service/leaver', 'keyCompromise');
  // the list of before written back, byte for byte and with its mtime: what a process whose
  // cache of the file is stale would hold
  const st = fs.statSync(path.join(dir, 'tokens.json'));
  fs.writeFileSync(path.join(dir, 'tokens.json'), before);
  fs.utimesSync(path.join(dir, 'tokens.json'), st.atime, st.mtime);
  const r = await server.transaction((tx) => tx.consumeToken(t.token.hash, new Date()));
  assert.deepEqual(r, { refused: 'used' });
});
