/**
 * A PostgreSQL URL never carries a password (#25 review), in its query string neither: the
 * driver (pg-connection-string) takes `?password=` (and `?sslpassword=`, a key's passphrase) as
 * the password, so the user:password@ check alone let it through, and the messages showed it.
 * The store's URL (--store, MCP_MTLS_STORE, new PostgresStore) and the decisions sink's
 * (createAuditLog('postgres://...'), createDecisionsSink, gateway.yaml decisions.store).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertNoPassword, redactUrl } from '../../src/util/postgres-url.js';
import { createAuditLog } from '../../src/mtls/audit.js';
import { createDecisionsSink } from '../../src/mtls/audit-postgres.js';

const urls = ['postgres://ca@127.0.0.1:1/mcp_ca?password=s3cret-pw', 'postgresql://ca@127.0.0.1:1/mcp_ca?sslmode=require&sslpassword=s3cret-pw', 'postgres://ca@127.0.0.1:1/mcp_ca?application_name=x&password=s3cret-pw'];
const refused = (e: Error & { code?: string }) => e.code === 'USAGE' && /holds a password/.test(e.message) && !e.message.includes('s3cret-pw') && !String((e as { hint?: string }).hint).includes('s3cret-pw');

describe('a password in a PostgreSQL URL\'s query string', () => {
  for (const url of urls) {
    it(`is refused by the store: ${url.replace('s3cret-pw', '...')}`, () => {
      assert.throws(() => assertNoPassword(url, 'store'), refused);
      assert.doesNotMatch(redactUrl(url), /s3cret-pw/);
    });
    it(`is refused by the decisions sink: ${url.replace('s3cret-pw', '...')}`, () => {
      assert.throws(() => createDecisionsSink(url), refused);
      assert.throws(() => createAuditLog(url), refused);
    });
  }
  it('other parameters are kept (sslmode, application_name)', () => {
    assert.doesNotThrow(() => assertNoPassword('postgres://ca@db/mcp_ca?sslmode=verify-full&application_name=ca', 'store'));
    assert.equal(redactUrl('postgres://ca@db/mcp_ca?sslmode=verify-full'), 'postgres://ca@db/mcp_ca?sslmode=verify-full');
    const sink = createDecisionsSink('postgres://w@127.0.0.1:1/mcp_ca?sslmode=disable');
    void sink.close();
  });
});
