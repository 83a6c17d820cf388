/**
 * Parsers fed garbage for a bounded time: mutations of valid inputs (bit flips, truncation,
 * insertion, duplication) and random bytes. Every input either parses or fails with an
 * MtlsError (a clear, coded error): never a TypeError, RangeError or hang.
 * FUZZ_MS (per parser, default 1500) sets the budget; `npm run test:stress` uses more.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import fc from 'fast-check';
import { parseBundleProfile } from '../../src/bundle/profile.js';
import { isMtlsError } from '../../src/errors.js';
import { decodeIdentity } from '../../src/identity/decode.js';
import { policyFromText } from '../../src/policy/compile.js';
import { gateMcpBody } from '../../src/mcp/gate.js';
import { decodeIdentityAttributes } from '../../src/x509/identity-extension.js';
import { parseCertificate } from '../../src/x509/certificate.js';
import { parseCrl } from '../../src/x509/crl.js';
import { createCsr, verifyCsr } from '../../src/x509/csr.js';
import { generateKey } from '../../src/x509/keys.js';
import { pemDecodeAll, pemEncode, readCertificates } from '../../src/x509/pem.js';
import { readPkcs12, writePkcs12 } from '../../src/x509/pkcs12.js';
import { cliOk, ROOT } from '../support/cli.js';
import { makePki } from '../support/pki.js';

const BUDGET = Number(process.env.FUZZ_MS ?? 1500);
const seeds: Record<string, Buffer> = {};
let iterations = 0;

before(async () => {
  const t = await makePki();
  const alice = await t.issue(['issue', 'client', '--user', 'alice', '--team', 'sre', '--role', 'admin', '--email', 'a@acme.test']);
  await cliOk(['revoke', alice.serial, '--dir', t.pki, '--reason', 'keyCompromise']);
  const key = crypto.createPrivateKey(fs.readFileSync(alice.files.key!));
  seeds.cert = readCertificates(fs.readFileSync(alice.files.cert))[0]!;
  seeds.pem = fs.readFileSync(alice.files.cert);
  seeds.crl = pemDecodeAll(fs.readFileSync(path.join(t.pki, 'crl', 'intermediate.crl'), 'utf8'))[0]!.der;
  seeds.csr = createCsr(generateKey('ec-p256'), 'fuzz');
  seeds.p12 = writePkcs12({ privateKey: key, certificates: readCertificates(seeds.pem), password: 'pw' });
  seeds.sda = Buffer.from('3071301f06082b06010505070a0431133011300f0c08706c6174666f726d0c03737265304e060355044831473021a11f861d7370696666653a2f2f61636d652e746573742f726f6c652f61646d696e3022a120861e7370696666653a2f2f61636d652e746573742f726f6c652f6f6e63616c6c', 'hex');
  seeds.policy = fs.readFileSync(path.join(ROOT, 'examples', 'policy', 'policy.yaml'));
  seeds.profile = Buffer.from(`kind: mcp-mtls/bundle\nversion: 1\ncertificate: |\n${seeds.pem.toString().replace(/^/gm, '  ')}key: |\n  x\nca: |\n  y\n`);
});

/** A mutation of `seed`: a few random edits, or random bytes. */
const mutated = (seed: () => Buffer) =>
  fc.oneof(
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate', 'dup')), { minLength: 1, maxLength: 6 }).map((edits) => {
      let b = Buffer.from(seed());
      for (const [pos, byte, op] of edits) {
        const i = b.length ? pos % b.length : 0;
        if (op === 'flip') b[i] = (b[i] ?? 0) ^ (1 << (byte % 8));
        else if (op === 'set') b[i] = byte;
        else if (op === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
        else if (op === 'delete') b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
        else if (op === 'truncate') b = b.subarray(0, i);
        else b = Buffer.concat([b.subarray(0, i), b.subarray(i, i + 40), b.subarray(i)]);
      }
      return b;
    }),
    fc.uint8Array({ maxLength: 512 }).map((u) => Buffer.from(u)),
  );

function fuzz(name: string, seed: () => Buffer, parse: (b: Buffer) => unknown) {
  test(`fuzz ${name}: parses or fails with a coded error, never crashes or hangs`, () => {
    const started = Date.now();
    let runs = 0;
    fc.assert(
      fc.property(mutated(seed), (input) => {
        runs++;
        const t0 = Date.now();
        try {
          parse(input);
        } catch (e) {
          if (!isMtlsError(e)) throw new Error(`${name}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message} on input ${input.toString('hex').slice(0, 200)}`);
        }
        assert.ok(Date.now() - t0 < 1000, `${name}: one input took ${Date.now() - t0} ms`);
      }),
      { numRuns: 1_000_000, interruptAfterTimeLimit: BUDGET, markInterruptAsFailure: false },
    );
    iterations += runs;
    assert.ok(runs > 50, `${runs} inputs in ${Date.now() - started} ms`);
  });
}

fuzz('certificate DER -> Identity', () => seeds.cert!, (b) => decodeIdentity(b));
fuzz('certificate DER', () => seeds.cert!, (b) => parseCertificate(b));
fuzz('identity extension', () => seeds.sda!, (b) => decodeIdentityAttributes(b));
fuzz('PEM', () => seeds.pem!, (b) => readCertificates(b).map((d) => parseCertificate(d)));
fuzz('CRL', () => seeds.crl!, (b) => {
  const c = parseCrl(b);
  void c.entries;
  c.revokedSerials();
});
fuzz('CSR', () => seeds.csr!, (b) => verifyCsr(b));
fuzz('CSR as PEM', () => Buffer.from(pemEncode('CERTIFICATE REQUEST', seeds.csr!)), (b) => verifyCsr(b));
fuzz('PKCS#12', () => seeds.p12!, (b) => readPkcs12(b, 'pw'));
fuzz('bundle profile', () => seeds.profile!, (b) => parseBundleProfile(b.toString('utf8'), 'fuzz.yaml'));
fuzz('policy YAML', () => seeds.policy!, (b) => policyFromText(b.toString('utf8'), 'fuzz.yaml'));

test('fuzz JSON-RPC bodies and headers at the gate: always a decision, never an exception', () => {
  const policy = policyFromText(seeds.policy!.toString());
  const identity = decodeIdentity(seeds.cert!);
  const json = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(fc.string(), tie('value'), { maxKeys: 4 })),
  })).value;
  const message = fc.record({
    jsonrpc: fc.oneof(fc.constant('2.0'), json),
    id: fc.oneof(fc.integer(), fc.string(), fc.constant(null), json),
    method: fc.oneof(fc.constantFrom('tools/call', 'tools/list', 'resources/read', 'prompts/get', 'completion/complete', 'initialize', 'ping', 'notifications/x'), fc.string()),
    params: fc.oneof(json, fc.record({ name: fc.oneof(fc.string(), json), arguments: json, uri: fc.oneof(fc.string(), json), ref: json, _meta: json })),
  }, { requiredKeys: [] });
  fc.assert(
    fc.property(fc.oneof(message, fc.array(message, { maxLength: 5 }), json), fc.dictionary(fc.constantFrom('mcp-method', 'mcp-name', 'x-forwarded-client-cert'), fc.string()), (body, headers) => {
      const r = gateMcpBody(body, { policy, identity, headers });
      assert.ok(r.kind === 'pass' || r.kind === 'respond');
    }),
    { numRuns: 1_000_000, interruptAfterTimeLimit: BUDGET, markInterruptAsFailure: false },
  );
});

test('fuzz totals', () => {
  assert.ok(iterations > 1000, `${iterations} inputs in total`);
  console.log(`# fuzz: ${iterations} inputs across 10 parsers`);
});
