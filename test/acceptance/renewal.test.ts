/**
 * Acceptance (#11): a client with a short certificate keeps calling tools through renewals.
 * Real parts only: the online CA (createCaServer, as `mcp-mtls ca serve` runs it), a real mTLS
 * MCP server (SDK 1.x adapter), the real SDK client on a transport whose credentials a
 * BundleRenewer replaces, and a bundle file on disk rewritten at each renewal.
 *
 * Quick mode (npm test): 1-minute certificates for 75 s (the run outlasts the first
 * certificate, so it cannot pass without renewals). Long mode (RENEWAL_SOAK_MINUTES=10,
 * RENEWAL_CERT_TTL=2m; `.ci/run` runs it beside the other suites): the "a client with a
 * 2-minute certificate keeps calling tools for 10 minutes".
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { parseDuration } from '../../src/util/duration.js';
import { writeBundle } from '../../src/bundle/write.js';
import { loadBundle } from '../../src/bundle/load.js';
import { createBundleRenewer } from '../../src/client/renewal.js';
import { createSdk1Transport } from '../../src/client/transport-sdk1.js';
import { policyFromText } from '../../src/policy/compile.js';
import { callerOf } from '../../src/mcp/caller.js';
import { createMcpSdk1Handler } from '../../src/mcp/sdk1.js';
import { createMtlsServer } from '../../src/mtls/mtls-server.js';
import { clientCreds, makeCa, serverCreds, startServer } from '../support/ca-serve.js';
import { tmpDir } from '../support/cli.js';

const MINUTES = Number(process.env.RENEWAL_SOAK_MINUTES ?? 0);
const RUN_MS = MINUTES > 0 ? MINUTES * 60_000 : 75_000;
const CERT_TTL_MS = parseDuration(process.env.RENEWAL_CERT_TTL ?? (MINUTES > 0 ? '2m' : '1m'));
const CALL_EVERY_MS = 250;

test(`a client with a ${CERT_TTL_MS / 60_000}-minute certificate calls tools for ${RUN_MS / 60_000} minutes through renewals, with no failed call`, { timeout: RUN_MS + 120_000 }, async () => {
  const t = makeCa('acme.test', tmpDir('acceptance-renewal-'));
  const caServer = await startServer(t, { renewRate: { burst: 10, perMinute: 60 } });
  const renewUrl = `https://127.0.0.1:${caServer.port}/renew`;

  // the MCP server: one tool that answers with the serial of the certificate it saw
  const policy = policyFromText('version: 1\nrules:\n  - { id: all, subjects: { any: true }, tools: [serial] }\n');
  const handler = createMcpSdk1Handler({
    serverInfo: { name: 'soak', version: '1.0.0' },
    policy,
    build: (server) => {
      server.registerTool('serial', {}, async (extra) => ({ content: [{ type: 'text', text: callerOf(extra).serial }] }));
    },
  });
  const tls = await serverCreds(t.ca);
  const mcp = createMtlsServer({ cert: tls.cert, key: tls.key, ca: t.rootPem }, handler);
  await new Promise<void>((r) => mcp.listen(0, '127.0.0.1', r));
  const url = `https://127.0.0.1:${(mcp.address() as AddressInfo).port}/mcp`;

  // the client's bundle, on disk, with a short certificate
  const first = await clientCreds(t.ca, { id: 'soak-bot', kind: 'service', teams: ['ci'], ttlMs: CERT_TTL_MS });
  const file = path.join(tmpDir('acceptance-bundle-'), 'soak-bot.yaml');
  const crypto = await import('node:crypto');
  const chain = first.cert.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!.map((p) => new crypto.X509Certificate(p).raw);
  writeBundle('profile', file, { chain, root: new crypto.X509Certificate(t.rootPem).raw, key: crypto.createPrivateKey(first.key), url, renewUrl });
  const firstNotAfter = new Date(new crypto.X509Certificate(chain[0]!).validTo);

  const renewer = createBundleRenewer({ bundle: await loadBundle(file), log: () => undefined });
  const client = new Client({ name: 'soak', version: '1.0.0' });
  await client.connect(createSdk1Transport(renewer, url));

  const serials = new Set<string>();
  const failures: string[] = [];
  let calls = 0;
  const end = Date.now() + RUN_MS;
  while (Date.now() < end) {
    try {
      const r = (await client.callTool({ name: 'serial', arguments: {} })) as { isError?: boolean; content: { text: string }[] };
      if (r.isError) failures.push(`${new Date().toISOString()} ${r.content[0]?.text}`);
      else serials.add(r.content[0]!.text);
    } catch (e) {
      failures.push(`${new Date().toISOString()} ${(e as Error).message}`);
    }
    calls++;
    await new Promise((r) => setTimeout(r, CALL_EVERY_MS));
  }
  const status = renewer.status();
  const onDisk = await loadBundle(file);
  // a renewal can land in the last interval, after the loop's last call: the certificate on disk
  // must then be the one the client's next call uses (a few calls, bounded), not one nobody uses
  for (let i = 0; i < 20 && onDisk.identity && !serials.has(onDisk.identity.serial); i++) {
    const r = (await client.callTool({ name: 'serial', arguments: {} })) as { isError?: boolean; content: { text: string }[] };
    if (!r.isError) serials.add(r.content[0]!.text);
    await new Promise((r) => setTimeout(r, CALL_EVERY_MS));
  }
  await client.close();
  renewer.stop();
  await handler.close();
  mcp.closeAllConnections();
  mcp.close();
  await caServer.server.shutdown(1000);

  process.stdout.write(`# ${calls} calls over ${RUN_MS / 1000} s, ${status.renewals} renewals, ${serials.size} certificates seen by the server, ${failures.length} failed\n`);
  assert.deepEqual(failures, [], 'no call failed');
  assert.ok(Date.now() > firstNotAfter.getTime(), 'the run outlasted the first certificate');
  const expected = Math.floor((RUN_MS - (CERT_TTL_MS + 60_000) / 3) / ((CERT_TTL_MS + 60_000) / 3)); // first at 2/3 of the backdated lifetime, then every 1/3
  assert.ok(status.renewals >= Math.max(1, expected - 1), `renewed ${status.renewals} times (about ${expected} expected)`);
  assert.ok(serials.size >= 2, 'the server saw the renewed certificates, not only the first');
  assert.ok(onDisk.identity && serials.has(onDisk.identity.serial), 'the bundle on disk holds a certificate the server saw in use');
  assert.ok(onDisk.notAfter.getTime() > firstNotAfter.getTime(), 'the bundle on disk was rewritten with a later certificate');
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
});
