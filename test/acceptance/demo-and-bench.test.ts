/** The demo and the benchmark run as a user runs them, and check themselves. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, run } from '../support/cli.js';

test('npm run demo: who sees what, allowed and denied calls with their rules, the revoked user refused', async () => {
  const r = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'examples', 'demo', 'demo.ts')]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /alice\s+spiffe:\/\/demo\.test\/user\/alice teams=\[sre\] roles=\[admin\]\s+sees:\s+deploy restart_service search_docs/);
  assert.match(r.stdout, /bob\s+spiffe:\/\/demo\.test\/user\/bob teams=\[dev\] roles=\[\]\s+sees:\s+deploy search_docs/);
  assert.match(r.stdout, /deploy\(production\): denied by dev-staging-only/);
  assert.match(r.stdout, /carol\s+refused at the TLS handshake\s+sees:\s+-\s+calls: reason: certificate_revoked/);
  assert.match(r.stdout, /demo OK/);
});

test('bench/issue runs (smoke size) and prints a ratio against its baseline', async () => {
  const r = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'issue.ts')], { env: { BENCH_N: '60' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /baseline @peculiar\/x509 .*1\.0x/);
  for (const row of ['engine \\+ P-256 keygen', 'engine, public key given', 'CSR verify \\+ issue', 'folder store batch']) {
    assert.match(r.stdout, new RegExp(`${row}.*\\d+\\.\\dx`));
  }
});

test('bench/crl runs (smoke size) next to openssl ca -gencrl and OpenSSL loading the CRL', async () => {
  const r = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'crl.ts')], { env: { BENCH_CRL_N: '2000' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /sign\s+mcp-mtls\s+[\d.]+ ms\s+openssl ca -gencrl\s+[\d.]+ ms/);
  assert.match(r.stdout, /load\s+mcp-mtls\s+[\d.]+ ms\s+OpenSSL TLS context/);
  const sizes = r.stdout.match(/size\s+mcp-mtls (\d+) bytes\s+openssl (\d+) bytes/);
  assert.ok(sizes, r.stdout);
  assert.ok(Math.abs(Number(sizes[1]) - Number(sizes[2])) < 64, 'same entries, about the same DER size as OpenSSL');
});

test('bench/policy runs (smoke size) and prints p50, p99 and a ratio against the naive engine', async () => {
  const r = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'policy.ts')], { env: { BENCH_POLICY_N: '3000' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /naive baseline \(no when\)\s+[\d.]+\s+[\d.]+\s+\d+\s+1\.0x/);
  assert.match(r.stdout, /mcp-mtls warm \(20% of rules with CEL\)\s+[\d.]+\s+[\d.]+\s+\d+\s+[\d.]+x/);
});

test('bench/policy-cedar runs (smoke size): mcp-mtls next to Cedar, every timed decision the same in both', { timeout: 300_000 }, async () => {
  const r = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'policy-cedar.ts')], { env: { BENCH_CEDAR_N: '200', BENCH_CEDAR_RULES: '100,1000' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /100\s+cedar-wasm\s+[\d.]+\s+[\d.]+\s+1\.0x \(baseline\)/);
  assert.match(r.stdout, /1000\s+mcp-mtls cold\s+[\d.]+\s+[\d.]+\s+[\d.]+x/);
  assert.equal(r.stdout.match(/identical in both engines/g)?.length, 2, r.stdout);
});

test('bench/server runs (smoke size): tools/call for (a) TLS, (b) mTLS + policy, (c) SDK default, handshakes, CRL cost', { timeout: 600_000 }, async () => {
  const r = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'server.ts')], {
    env: { BENCH_SECONDS: '0.3', BENCH_ROUNDS: '1', BENCH_HANDSHAKES: '50', BENCH_CRL_ENTRIES: '1000' },
  });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /\(b\) mTLS \+ identity \+ policy\s+\d+\s+\d+/);
  assert.match(r.stdout, /ratio \(b\)\/\(a\): throughput [\d.]+x, CPU per request [\d.]+x/);
  assert.match(r.stdout, /ratio \(b\)\/\(c\): throughput [\d.]+x/);
  assert.match(r.stdout, /server CPU per full handshake: \d+ µs with no CRL, \d+ µs with 1000 revoked serials loaded/);
  assert.match(r.stdout, /ratio \(e\)\/\(d\): server CPU per request [\d.]+x|behind nginx: not installed/); // #20: nginx forwarding the certificate vs nginx in front of no authentication
});

test('bench/handshake-variants runs (smoke size): server CPU per handshake of each variant against bare node:https', { timeout: 300_000 }, async () => {
  const r = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'handshake-variants.ts')], { env: { BENCH_HANDSHAKES: '30', BENCH_ROUNDS: '3' } });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  for (const kind of ['resumed', 'full']) for (const m of ['bare', 'opts', 'getsession', 'mtls']) assert.match(r.stdout, new RegExp(`^${kind}\\s+${m}\\s+\\d+ µs\\s+\\d+\\.\\d\\dx bare`, 'm'));
});

test('bench/gateway runs (smoke size): direct, through the gateway, and behind nginx when installed', { timeout: 600_000 }, async () => {
  const r = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'gateway.ts')], { env: { BENCH_SECONDS: '0.3', BENCH_ROUNDS: '1' } });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /direct \(plain HTTP\)\s+\d+\s+[\d.]+/);
  assert.match(r.stdout, /mcp-mtls gateway\s+\d+\s+[\d.]+\s+\d+/);
  assert.match(r.stdout, /ratio gateway\/nginx|nginx: not installed/);
});

test('bench/store-scale runs (smoke size): issue, list --team, inspect and CRL costs at two store sizes, folder and PostgreSQL, as ratios', { timeout: 300_000 }, async () => {
  const r = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'store-scale.ts')], { env: { BENCH_STORE_N: '1000,5000', BENCH_STORE_ISSUE: '10' } });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  for (const store of ['folder', 'postgres']) {
    assert.match(r.stdout, new RegExp(`${store}\\s+1000\\s+\\d+\\s+1\\.00\\s+[\\d.]+\\s+1\\.00\\s+[\\d.]+\\s+1\\.00\\s+[\\d.]+\\s+1\\.00`), r.stdout);
    assert.match(r.stdout, new RegExp(`${store}\\s+5000(\\s+[\\d.]+){8}`), r.stdout);
  }
  // the list found every certificate of the team: the 200 signed for real plus 1% of the fillers
  assert.match(r.stdout, /folder N=5000: .*\(247 listed\)/, r.stdout);
});

test('bench/connections runs (smoke size): memory per idle connection, mtls and MCP session next to bare node:https', { timeout: 300_000 }, async () => {
  const r = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'connections.ts')], { env: { BENCH_CONN_N: '200' } });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /node:https\s+0->200\s+-?[\d.]+\s+baseline/);
  assert.match(r.stdout, /mtls\s+0->200\s+-?[\d.]+\s+[+-][\d.]+\s+-?[\d.]+\s+[+-][\d.]+/);
  assert.match(r.stdout, /mcp session\s+0->200\s+-?[\d.]+\s+[+-][\d.]+/);
});
