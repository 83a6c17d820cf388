// sha256Hex (src/util/sha256.ts): the one-shot crypto.hash where Node has it, createHash otherwise;
// both must give what every fingerprint and token hash in the stores was made with
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import test from 'node:test';
import { sha256Hex } from '../../src/util/sha256.js';

test('sha256Hex is the SHA-256 hex of bytes and of UTF-8 text, as createHash gives it', () => {
  const cases: (Buffer | string)[] = [Buffer.alloc(0), Buffer.from('abc'), crypto.randomBytes(1500), 'mcpt_0123456789abcdef_secret', 'émoji 🔑 text'];
  for (const c of cases) assert.equal(sha256Hex(c), crypto.createHash('sha256').update(c).digest('hex'));
  // the FIPS 180-2 test vector, independently of Node's two APIs
  assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});
