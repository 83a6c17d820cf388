/**
 * An Authenticator written against the v1 interface (authenticate, authenticateCertificate,
 * setRevocation) still type-checks where it was accepted and still works there, trusted proxies
 * included: the forwarded-certificate cache's four methods (verifyForwarded, current, revision,
 * now) are on ForwardedAuthenticator, which createAuthenticator returns, and a v1 authenticator
 * gets defaults that keep nothing (it is asked on every request, as in v1). The fixture
 * (test/fixtures/authenticator-v1.ts) is compiled alone by tsc --noEmit with the project's
 * settings, then run behind a real HTTP server with forwarded headers from 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createAuthenticator } from '../../src/mtls/authenticate.js';
import { middlewareWith, SwitchableAuthenticator } from '../fixtures/authenticator-v1.js';
import { tmpDir } from '../support/cli.js';
import { useForwardedServer } from '../support/forwarded-reader.js';
import { memoryCertificates } from '../support/memory-ca.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('a v1-era Authenticator', { timeout: 180_000 }, () => {
  it('type-checks where it was accepted (tsc --noEmit on the fixture alone, the project\'s settings)', async () => {
    const dir = tmpDir('authenticator-v1-');
    const tsconfig = path.join(dir, 'tsconfig.json');
    fs.writeFileSync(tsconfig, JSON.stringify({ extends: path.join(ROOT, 'tsconfig.json'), compilerOptions: { noEmit: true, incremental: false, rootDir: ROOT, typeRoots: [path.join(ROOT, 'node_modules/@types')] }, include: [], files: [path.join(ROOT, 'test/fixtures/authenticator-v1.ts')] }));
    const r = await promisify(execFile)(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', tsconfig], { cwd: ROOT, timeout: 170_000 }).then(
      () => ({ code: 0, out: '' }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
    );
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.code, 0, r.out);
  });

  describe('behind a trusted proxy', () => {
    const certs = memoryCertificates(Date.now());
    const rootCa = certs.root('V1 Test Root', 100);
    const interCa = certs.intermediate(rootCa, 'V1 Test Intermediate', 50);
    const dave = certs.leaf(interCa, 'dave', 24);
    const v1 = new SwitchableAuthenticator(createAuthenticator({ caCertificates: [rootCa.der] }));
    const { get } = useForwardedServer(() => middlewareWith(v1, [{ from: '127.0.0.1', format: 'rfc9440' }]), dave, interCa.der);

    it('decides every request, as in v1: a refusal it starts giving holds from the next request on', async () => {
      assert.equal(await get(), '200 ok spiffe://acme.test/user/dave');
      assert.equal(await get(), '200 ok spiffe://acme.test/user/dave');
      assert.equal(v1.calls, 2, 'asked on each request');
      v1.off = true;
      assert.match(await get(), /^401 .*certificate_revoked/);
      assert.equal(v1.calls, 3);
    });
  });
});
