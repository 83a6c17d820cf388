/**
 * POST /revoke-self from a browser page: a browser that holds the person's certificate presents
 * it to any site's form POST, and the body is ignored, so a plain cross-site form could revoke
 * it. Requests a browser marks as sent for a page (Origin, Sec-Fetch-Site) are refused 403 and
 * the certificate stays valid; the CLI's request (neither header) still revokes it. The same
 * for POST /renew (a text/plain form body can carry a CSR).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CaServer } from '../../../src/ca/serve/server.js';
import { clientCreds, makeCa, request, startServer, type Creds, type TestCa } from '../../support/ca-serve.js';

describe('POST /revoke-self refuses cross-site requests', { timeout: 60_000 }, () => {
  let t: TestCa;
  let server: CaServer;
  let port: number;
  let alice: Creds;
  before(async () => {
    t = makeCa();
    ({ server, port } = await startServer(t));
    alice = await clientCreds(t.ca, { id: 'alice' });
  });
  after(async () => server.shutdown(100));

  it('Origin or a cross-site Sec-Fetch-Site: 403, not revoked; then the CLI-like request revokes', async () => {
    const cases: Record<string, string>[] = [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site', 'content-type': 'text/plain' }];
    for (const headers of cases) {
      const r = await request(port, t.rootPem, { method: 'POST', path: '/revoke-self', headers, body: '', creds: alice });
      assert.equal(r.status, 403, `${JSON.stringify(headers)}: ${r.text()}`);
      assert.equal(r.json().error?.code, 'CROSS_SITE_REFUSED');
    }
    // /renew too: a text/plain form can carry a CSR, so a page could renew for a key it chose
    for (const headers of cases) {
      const r = await request(port, t.rootPem, { method: 'POST', path: '/renew', headers, body: '', creds: alice });
      assert.equal(r.status, 403, `/renew ${JSON.stringify(headers)}: ${r.text()}`);
      assert.equal(r.json().error?.code, 'CROSS_SITE_REFUSED');
    }
    const ok = await request(port, t.rootPem, { method: 'POST', path: '/revoke-self', headers: { accept: 'application/json' }, body: '', creds: alice });
    assert.equal(ok.status, 200, ok.text());
    assert.equal(ok.json().revoked, alice.serial);
  });
});
