/**
 * The JSON answer's body timeout (UpstreamAnswer.readAll): a body that ends in time is read
 * whole, also under an upstream timeout past setTimeout's 32-bit limit (gateway.yaml accepts
 * `upstreamTimeout: 30d`; Node fires such a timer after 1 ms); one that does not is refused.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Agent } from 'undici';
import { callUpstream } from '../../src/gateway/upstream.js';

let server: http.Server;
let url: URL;
const dispatcher = new Agent();
before(async () => {
  // headers at once, the body 100 ms later
  server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"jsonrpc":"2.0",');
    setTimeout(() => res.end('"id":1,"result":{}}'), 100);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
});
after(async () => {
  await dispatcher.close();
  server.closeAllConnections();
  server.close();
});

async function readWithin(timeoutMs: number): Promise<string> {
  const res = new http.ServerResponse(new http.IncomingMessage(null as never));
  const answer = await callUpstream({ url, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', dispatcher, timeoutMs }, res, { upstream: url } as never, () => undefined);
  assert.ok(answer, 'the upstream answered');
  const body = await answer.readAll(1 << 20, timeoutMs);
  return String(body);
}

test('a body that ends in time is read whole, also with an upstream timeout of 30 days', async () => {
  assert.equal(await readWithin(5_000), '{"jsonrpc":"2.0","id":1,"result":{}}');
  assert.equal(await readWithin(30 * 86_400_000), '{"jsonrpc":"2.0","id":1,"result":{}}');
});

test('a body that does not end within the timeout is refused as UPSTREAM_BODY_TIMEOUT', async () => {
  await assert.rejects(readWithin(30), { code: 'UPSTREAM_BODY_TIMEOUT' });
});
