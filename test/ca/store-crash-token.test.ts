/**
 * An enrollment killed after its journal (and the token's use, written with it) but before its
 * index line: the next transaction undoes the certificate and gives the token back, so the
 * workload's retry enrolls instead of being refused as "used" with no certificate anywhere.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Authority } from '../../src/ca/authority.js';
import { initCa } from '../../src/ca/init.js';
import { FsStore } from '../../src/ca/store/fs-store.js';
import { createEnrollmentToken, enrollWithToken } from '../../src/ca/tokens.js';
import { createCsr } from '../../src/x509/csr.js';
import { generateKey } from '../../src/x509/keys.js';
import { tmpDir } from '../support/cli.js';

const YEAR = 365 * 86_400_000;
const SRC = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'src');

test('a token used by an enrollment that died before its commit point enrolls again after the recovery', { timeout: 60_000 }, async () => {
  const dir = path.join(tmpDir(), 'pki');
  initCa({ dir, trustDomain: 'acme.test', rootTtlMs: 10 * YEAR, intermediateTtlMs: 5 * YEAR });
  const ca = Authority.open(dir);
  const { secret, token } = await createEnrollmentToken(ca, { kind: 'service', id: 'ci-runner', teams: ['ci'], roles: [], ttlMs: 3_600_000 });
  const csr = path.join(dir, '..', 'req.csr');
  fs.writeFileSync(csr, createCsr(generateKey('ec-p256'), 'x'));
  // the enrollment, in a process that dies (SIGKILL of itself) right after the journal
  const script = `
    import fs from 'node:fs';
    import { Authority } from '${SRC}/ca/authority.ts';
    import { FsStore } from '${SRC}/ca/store/fs-store.ts';
    import { enrollWithToken } from '${SRC}/ca/tokens.ts';
    const ca = Authority.open(process.argv[1], { store: new FsStore(process.argv[1], { crashAt: 'after-journal' }) });
    await enrollWithToken(ca, process.argv[2], fs.readFileSync(process.argv[3]));
  `;
  const signal = await new Promise<string | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir, secret, csr], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('exit', (_code, sig) => resolve(sig));
  });
  assert.equal(signal, 'SIGKILL', 'the enrollment died at its journal');
  // the use is a file of its own (fs-tokens.ts), written with the journal; tokens.json is unchanged
  const listed = (JSON.parse(fs.readFileSync(path.join(dir, 'tokens.json'), 'utf8')) as { id: string; usedAt?: string }[]).find((t) => t.id === token.id);
  assert.equal(listed?.usedAt, undefined);
  const onDisk = JSON.parse(fs.readFileSync(path.join(dir, 'tokens-used', `${token.hash}.json`), 'utf8')) as { usedAt?: string; usedFor?: string };
  assert.ok(onDisk.usedAt, 'the token was written used with the journal');
  const usedFor = onDisk.usedFor as string;
  assert.equal(fs.existsSync(path.join(dir, 'pending.json')), true);
  // a read before any transaction recovers sees the token unused (the issuance did not commit)
  const seen = (await new FsStore(dir).readTokens()).find((t) => t.id === token.id);
  assert.equal(seen?.usedAt, undefined, 'a read before the recovery sees the token unused');

  // the next transaction recovers: the certificate is undone, the token unused again
  const again = Authority.open(dir);
  const { issued, replayed } = await enrollWithToken(again, secret, createCsr(generateKey('ec-p256'), 'y'));
  assert.equal(replayed, false);
  assert.notEqual(issued.record.serial, usedFor);
  const index = await again.store.readIndex();
  assert.equal(index.some((r) => r.serial === usedFor), false, 'the undone certificate is not recorded');
  const after = (await again.store.readTokens()).find((t) => t.id === token.id);
  assert.equal(after?.usedFor, issued.record.serial, 'the token is used by the enrollment that committed');
  const recovered = (await again.store.readAudit()).find((e) => e.event === 'store.recovered');
  assert.deepEqual(recovered?.tokensRestored, [token.id]);
  // and the next enrollment's use is what says it is used (the undone one's file went)
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'tokens-used', `${token.hash}.json`), 'utf8')).usedFor, issued.record.serial);
});
