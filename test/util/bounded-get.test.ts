import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { isMtlsError } from '../../src/errors.js';
import { boundedGet } from '../../src/util/bounded-get.js';

let server: http.Server;
let base: string;
before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/ok') res.end('hello');
    else if (req.url === '/declared') res.writeHead(200, { 'content-length': '100' }).end('x'.repeat(100));
    else if (req.url === '/chunked') {
      res.write('x'.repeat(60));
      res.end('x'.repeat(60));
    } else if (req.url === '/slow') setTimeout(() => res.end('late'), 2_000).unref();
    else if (req.url === '/moved') res.writeHead(302, { location: '/ok' }).end('see /ok');
    else res.writeHead(404).end('no');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

test('a 200 body within the limits', async () => {
  const r = await boundedGet(new URL(`${base}/ok`), { timeoutMs: 1000, maxBytes: 10 });
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'hello');
});

test('another status comes back with an empty body, redirects not followed', async () => {
  const r = await boundedGet(new URL(`${base}/moved`), { timeoutMs: 1000, maxBytes: 10 });
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, '/ok');
  assert.equal(r.body.length, 0);
});

test('a body declared or found larger than maxBytes is refused', async () => {
  await assert.rejects(boundedGet(new URL(`${base}/declared`), { timeoutMs: 1000, maxBytes: 99 }), (e) => isMtlsError(e, 'IO_ERROR') && e.message === 'the body is 100 bytes, more than the 99 allowed');
  await assert.rejects(boundedGet(new URL(`${base}/chunked`), { timeoutMs: 1000, maxBytes: 100 }), (e) => isMtlsError(e, 'IO_ERROR') && e.message === 'the body is larger than the 100 bytes allowed');
});

test('no answer within the time limit, or an abort: rejected', async () => {
  await assert.rejects(boundedGet(new URL(`${base}/slow`), { timeoutMs: 100, maxBytes: 10 }), (e) => isMtlsError(e, 'IO_ERROR') && e.message === 'no answer within 100 ms');
  const ac = new AbortController();
  const p = boundedGet(new URL(`${base}/slow`), { timeoutMs: 5000, maxBytes: 10, signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(p, /aborted/);
});

test('a URL with credentials, or not http(s), is not fetched', async () => {
  await assert.rejects(boundedGet(new URL(`http://user:secret@127.0.0.1:1/`), { timeoutMs: 1000, maxBytes: 10 }), (e) => isMtlsError(e, 'BAD_ARGUMENT') && !e.message.includes('secret'));
  await assert.rejects(boundedGet(new URL('file:///etc/passwd'), { timeoutMs: 1000, maxBytes: 10 }), (e) => isMtlsError(e, 'BAD_ARGUMENT'));
});
