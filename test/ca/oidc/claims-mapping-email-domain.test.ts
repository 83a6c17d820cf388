/**
 * `principalClaim: email` with `emailDomain`: a verified address at exactly that domain names
 * `user/<local part>`; nothing else does. The mapping must never give two different addresses
 * one principal: another domain that ends like ours (`acme.test.evil.example`, `evilacme.test`),
 * a subdomain, plus-addressing, a non-ASCII look-alike in either part, a second `@`, a quoted
 * local part. The domain's case is DNS's (folded, ASCII only); the local part's is kept (ids are
 * case-sensitive: `Bob` and `bob` stay two principals). Config: emailDomain is required with
 * principalClaim: email, and refused with the other claims.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mapClaims } from '../../../src/ca/oidc/claims-mapping.js';
import { LoginSchema } from '../../../src/ca/oidc/config-schema.js';
import type { LoginProvider } from '../../../src/ca/oidc/providers.js';
import { OidcRefused } from '../../../src/ca/oidc/refused.js';

const provider = { name: 'idp', issuer: 'https://idp.test', clientId: 'c', audiences: ['c'], principalClaim: 'email', emailDomain: 'acme.test', groupsClaim: 'groups', groups: {}, requireMappedGroup: false } as unknown as LoginProvider;
const idOf = (email: string, extra: Record<string, unknown> = {}) => mapClaims(provider, { sub: 's', email, email_verified: true, ...extra }).id;
const refused = (email: string, re: RegExp) => assert.throws(() => idOf(email), (e: unknown) => e instanceof OidcRefused && e.refusal === 'OIDC_PRINCIPAL' && re.test(e.message), email);

describe('principalClaim: email with emailDomain', () => {
  it('bob@acme.test is user/bob; the domain compares without case; the local part keeps its case', () => {
    assert.equal(idOf('bob@acme.test'), 'bob');
    assert.equal(idOf('bob@ACME.Test'), 'bob');
    assert.equal(idOf('first.last_2-x@acme.test'), 'first.last_2-x');
    assert.equal(idOf('Bob@acme.test'), 'Bob');
  });

  it('an address at another domain never becomes user/bob, however it is spelled', () => {
    for (const email of ['bob@evil.example', 'bob@acme.test.evil.example', 'bob@evilacme.test', 'bob@sub.acme.test', 'bob@acme.test.', 'bob@acme', 'bob@', 'bob']) refused(email, /domain|not an email/);
  });

  it('no rewriting that would give two addresses one principal: plus-addressing, unicode look-alikes, a second @, quoting', () => {
    for (const email of ['bob+admin@acme.test', 'b\u043eb@acme.test', 'bob@acme.t\u0435st', 'bob@acme.tes\u212A', 'bob@acme.tes\u0074\u0301', '"bob@x"@acme.test', 'bob@x@acme.test', '@acme.test', '..@acme.test', '.@acme.test', `${'a'.repeat(129)}@acme.test`]) {
      assert.throws(() => idOf(email), (e: unknown) => e instanceof OidcRefused && e.refusal === 'OIDC_PRINCIPAL', JSON.stringify(email));
    }
  });

  it('an unverified address names nobody', () => {
    for (const v of [false, 'true', undefined]) assert.throws(() => idOf('bob@acme.test', { email_verified: v }), (e: unknown) => e instanceof OidcRefused && /not verified/.test(e.message), String(v));
  });

  it('config: emailDomain is required with principalClaim: email (saying which claim to use otherwise), and only there', () => {
    const base = { name: 'x', issuer: 'https://idp.example.com', clientId: 'c' };
    const problem = (p: Record<string, unknown>) => {
      const r = LoginSchema.safeParse({ providers: [{ ...base, ...p }] });
      return r.success ? undefined : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    };
    assert.match(problem({ principalClaim: 'email' }) ?? 'accepted', /providers\.0\.emailDomain: .*required with principalClaim: email.*preferred_username or sub/);
    assert.match(problem({ principalClaim: 'sub', emailDomain: 'acme.test' }) ?? 'accepted', /providers\.0\.emailDomain: .*only with principalClaim: email/);
    for (const d of ['ACME.test', 'acme.test.', '*.acme.test', 'acme_test', 'acme.t\u0435st', '', '@acme.test']) assert.ok(problem({ principalClaim: 'email', emailDomain: d }), `emailDomain ${JSON.stringify(d)} accepted`);
    assert.equal(problem({ principalClaim: 'email', emailDomain: 'acme.test' }), undefined);
    assert.equal(problem({ principalClaim: 'email', emailDomain: 'xn--bcher-kva.example' }), undefined);
  });
});
