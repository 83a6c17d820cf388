/**
 * The public API is deliberate: docs/api.md is both the reference and the snapshot of every
 * export of every subpath (name, kind, signature, TSDoc). An export added, removed or changed
 * without regenerating it (`npm run docs:api`) fails here, and so does an export without TSDoc.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { collectApi, entryPoints, renderApi } from '../../scripts/api-reference.js';
import { ROOT } from '../support/cli.js';

const api = collectApi();

test('every subpath of package.json exports has an entry file in src/api/', () => {
  const entries = entryPoints();
  assert.deepEqual(
    entries.map((e) => e.subpath),
    ['mcp-mtls', 'mcp-mtls/ca', 'mcp-mtls/ca/serve', 'mcp-mtls/identity', 'mcp-mtls/policy', 'mcp-mtls/server', 'mcp-mtls/server/sdk1', 'mcp-mtls/server/sdk2', 'mcp-mtls/client', 'mcp-mtls/client/sdk1', 'mcp-mtls/client/sdk2', 'mcp-mtls/gateway'],
  );
  for (const e of entries) assert.ok(e.file.startsWith(path.join(ROOT, 'src', 'api') + path.sep) && fs.existsSync(e.file), `${e.subpath} -> ${e.file}`);
});

test('every export has TSDoc', () => {
  assert.deepEqual(api.filter((a) => !a.doc).map((a) => `${a.subpath}: ${a.name}`), []);
});

test('the export snapshot (docs/api.md) matches the code: run `npm run docs:api` after a deliberate API change', () => {
  const committed = fs.readFileSync(path.join(ROOT, 'docs', 'api.md'), 'utf8');
  assert.equal(renderApi(api), committed);
});

test('the snapshot notices a change (the check can fail)', () => {
  const changed = api.map((a) => (a.name === 'createMtlsServer' ? { ...a, signature: a.signature.replace('MtlsServer', 'Server') } : a));
  assert.notEqual(renderApi(changed), renderApi(api));
  assert.notEqual(renderApi(api.slice(1)), renderApi(api));
});
