/**
 * The loopback redirect listener of `mcp-mtls login` (browser flow) is ended only by the answer
 * to this attempt: a request to /callback with another state (from any local process, or a web
 * page that guessed the port) is answered 404 and changes nothing.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { signInWithBrowser } from '../../src/client/oidc-sign-in.js';

describe('browser sign-in: the loopback callback', { timeout: 20_000 }, () => {
  let server: http.Server;
  let config: oidc.Configuration;
  let tokenCalls = 0;
  before(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      tokenCalls++;
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_grant' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    config = new oidc.Configuration({ issuer: base, authorization_endpoint: `${base}/auth`, token_endpoint: `${base}/token` }, 'cli', undefined, oidc.None());
    oidc.allowInsecureRequests(config);
  });
  after(() => server.close());

  it('a callback with another state is 404 and does not end the sign-in; the right one does', async () => {
    let shown!: URL;
    const provider = { name: 'idp', issuer: 'x', clientId: 'cli', scopes: ['openid'] };
    let settled = false;
    const flow = signInWithBrowser(config, provider, (u) => (shown = u), 10_000).finally(() => (settled = true));
    flow.catch(() => undefined);
    while (!shown) await new Promise((r) => setTimeout(r, 10));
    const redirect = new URL(shown.searchParams.get('redirect_uri')!);
    const bogus = await fetch(`${redirect.href}?code=attacker&state=guess`);
    assert.equal(bogus.status, 404);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(settled, false, 'a callback with another state ended the sign-in');
    const right = await fetch(`${redirect.href}?code=c&state=${shown.searchParams.get('state')}`);
    assert.equal(right.status, 400); // the (fake) token endpoint refused the code: it was tried
    await assert.rejects(flow, /invalid_grant/);
    assert.equal(tokenCalls, 1);
  });
});
