/**
 * A provider's discovery document or JWKS is fetched with a bound on the whole fetch, not only
 * on the socket's idle time: a server that sends a byte every 100 ms never goes idle, and every
 * sign-in waiting for the keys would wait with it.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FetchFailed, fetchJson } from '../../../src/ca/oidc/fetch-json.js';

describe('fetchJson from a slow provider', { timeout: 20_000 }, () => {
  let server: http.Server;
  let url: string;
  before(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"keys":[');
      const t = setInterval(() => res.write(' '), 100); // 10 s of trickle at most
      setTimeout(() => (clearInterval(t), res.end(']}')), 10_000).unref();
      res.on('close', () => clearInterval(t));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('gives up after timeoutMs in all, though bytes keep coming', async () => {
    const t0 = Date.now();
    const err = await fetchJson(url, { timeoutMs: 700 }).then(() => undefined, (e: unknown) => e);
    const took = Date.now() - t0;
    assert.ok(err instanceof FetchFailed, `expected FetchFailed, got ${String(err)}`);
    assert.match((err as Error).message, /within 700 ms/);
    assert.ok(took < 3000, `took ${took} ms`);
  });
});
