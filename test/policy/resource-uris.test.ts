/**
 * The canonical resource URI (src/policy/uri.ts), issue 16 finding 3: every spelling of one
 * resource gets one decision (fast-check), the canonical form names the file every spelling
 * names, URIs whose decoding could still change the path are refused with a code, and
 * policies cannot hold patterns that no canonical URI could match.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import fc from 'fast-check';
import { isMtlsError } from '../../src/errors.js';
import type { Identity } from '../../src/identity/identity.js';
import { policyFromText } from '../../src/policy/compile.js';
import { authorizationFor } from '../../src/policy/mcp.js';
import { canonicalizeUri, canonicalUri } from '../../src/policy/uri.js';
import { gateMcpBody } from '../../src/mcp/gate.js';
import { filterResult } from '../../src/mcp/results.js';

const POLICY = policyFromText(`
version: 1
rules:
  - id: files
    subjects: { any: true }
    resources: ["file:///srv/**", "https://docs.example.com/**", "repo://acme/**"]
  - id: no-secrets
    effect: deny
    subjects: { users: [bob] }
    resources: ["file:///srv/secret/**", "file:///srv/a+b/**", "file:///srv/caf%C3%A9/**", "https://docs.example.com/private/**", "repo://acme/secret/**"]
`);

const who = (id: string): Identity => ({ principal: `spiffe://acme.test/user/${id}`, trustDomain: 'acme.test', kind: 'user', id, teams: [], roles: [], serial: '01', fingerprint: id.repeat(32), notAfter: new Date(Date.now() + 3_600_000) });
const bob = who('bob');
const alice = who('alice');

// characters of decoded path segments: unreserved, sub-delims, ':', '@', and ones that must be encoded
const CHARS = [...'aAzZ09-._~', ...'!$&\'()*+,=:@', ' ', '%', '?', '#', '[', ']', '"', '<', '^', '|', 'é', '日', '😀'];
const RAW_OK = /^[A-Za-z0-9\-._~!$&'()*+,=:@]$/; // may appear unencoded in a path

const segment = fc.array(fc.constantFrom(...CHARS), { minLength: 1, maxLength: 6 }).map((a) => a.join('')).filter((s) => s !== '.' && s !== '..' && !/%[0-9A-Fa-f]{2}/.test(s)); // "%" + two hex digits is refused (a double encoding)
const resource = fc.record({
  base: fc.constantFrom('file:///srv/', 'https://docs.example.com/', 'repo://acme/'),
  first: fc.constantFrom('secret', 'public', 'private', 'a+b', 'café', 'x'),
  rest: fc.array(segment, { minLength: 0, maxLength: 3 }),
});

/** One random spelling of a decoded segment: each octet raw (where it may be) or %XX in either case. */
const spell = (s: string, rnd: () => number): string =>
  [...s]
    .map((ch) => {
      if (RAW_OK.test(ch) && rnd() < 0.5) return ch;
      return [...Buffer.from(ch, 'utf8')].map((b) => {
        const h = b.toString(16).padStart(2, '0');
        return `%${rnd() < 0.5 ? h.toUpperCase() : h.toLowerCase()}`;
      }).join('');
    })
    .join('');

/** Another spelling of the whole URI: case of scheme and host, localhost, ./ and x/../ segments. */
function spelling(r: { base: string; first: string; rest: string[] }, seed: number): string {
  let state = seed;
  const rnd = () => ((state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const flipCase = (s: string) => [...s].map((c) => (rnd() < 0.5 ? c.toUpperCase() : c)).join('');
  const [, scheme, host] = /^([a-z]+):\/\/([^/]*)\//.exec(r.base) as RegExpExecArray;
  const h = scheme === 'file' ? (rnd() < 0.3 ? flipCase('localhost') : '') : flipCase(host as string);
  const segs = [r.first, ...r.rest].flatMap((s) => {
    const extra = rnd() < 0.2 ? ['.'] : rnd() < 0.2 ? [spell('zz', rnd), '..'] : [];
    return [...extra, spell(s, rnd)];
  });
  return `${flipCase(scheme as string)}://${h}/${segs.join('/')}`;
}

test('every spelling of one resource has one canonical form and gets one decision (property)', () => {
  fc.assert(
    fc.property(resource, fc.integer(), fc.integer(), (r, s1, s2) => {
      const a = spelling(r, s1);
      const b = spelling(r, s2);
      const ca = canonicalizeUri(a);
      const cb = canonicalizeUri(b);
      assert.ok(ca.ok && cb.ok, `${a}: ${JSON.stringify(ca)}`);
      assert.equal(ca.uri, cb.uri, `${a} and ${b}`);
      // a canonical URI is its own canonical form
      assert.deepEqual(canonicalizeUri(ca.uri), ca);
      for (const subject of [alice, bob]) {
        const da = POLICY.decide(subject, { kind: 'resource', uri: a });
        const db = POLICY.decide(subject, { kind: 'resource', uri: b });
        assert.equal(da.allowed, db.allowed, `${a} / ${b}`);
        assert.equal(POLICY.visible(subject, { kind: 'resource', uri: a }), da.visible);
      }
      // the deny rules hold whatever the spelling
      const denied = ['secret', 'a+b', 'café'].includes(r.first) && r.rest.length > 0 && r.base === 'file:///srv/';
      if (denied) assert.equal(POLICY.decide(bob, { kind: 'resource', uri: a }).allowed, false, a);
    }),
    { numRuns: 2000 },
  );
});

test('a canonical file: URI names the same file as every spelling of it, and WHATWG URL leaves it as it is (property)', () => {
  fc.assert(
    fc.property(resource, fc.integer(), (r, seed) => {
      const a = spelling({ ...r, base: 'file:///srv/' }, seed);
      const c = canonicalUri(a);
      // the SDKs parse resource URIs with new URL(): the canonical form must survive that unchanged
      assert.equal(new URL(c).href, c);
      assert.equal(fileURLToPath(c), fileURLToPath(new URL(a)), a);
    }),
    { numRuns: 2000 },
  );
});

test('URIs whose decoding could still change the path are refused: RESOURCE_URI_INVALID with a reason and a hint', () => {
  const refused: [string, RegExp][] = [
    ['file:///srv/public/%2e%2e/secret/key', /encoded dot segment/],
    ['file:///srv/public/.%2E/secret/key', /encoded dot segment/],
    ['file:///srv/%2E/secret', /encoded dot segment/],
    ['file:///srv/a%2fb', /encoded slash/],
    ['file:///srv/a%5Cb', /backslash/],
    ['file:///srv/a\\b', /backslash/],
    ['file:///srv/key%00.txt', /control character/],
    ['file:///srv/a%0Ab', /control character/],
    ['file:///srv/a\tb', /control character/],
    ['file:///srv/%C3', /not UTF-8/],
    ['file:///srv/%C0%AE%C0%AE/x', /not UTF-8/], // overlong "..", the classic
    ['file:///srv/%zz', /two hex digits/],
    ['file:///srv/%252e%252e/x', /double percent-encoding/],
    ['file:///srv//secret/key', /empty segment/],
    ['file:////srv/secret/key', /empty segment/],
    ['file:///srv/secret;v=1/key', /";"/],
    ['file:///srv/secret/key#x', /fragment/],
    ['file:///srv/secret/key?x', /query/],
    ['https://user@docs.example.com/x', /user information/],
    ['https://docs%2eexample.com/x', /host/],
    ['file:srv/x', /absolute path/],
    ['/srv/x', /absolute URI/],
    ['file:///srv/\uD800', /Unicode/],
  ];
  for (const [uri, why] of refused) {
    const c = canonicalizeUri(uri);
    assert.equal(c.ok, false, `${uri} was accepted as ${JSON.stringify(c)}`);
    assert.match((c as { problem: string }).problem, why, uri);
    assert.throws(() => canonicalUri(uri), (e: unknown) => isMtlsError(e, 'RESOURCE_URI_INVALID') && typeof e.hint === 'string' && why.test(e.message), uri);
    // a decision on one is a deny, as for an unknown resource
    assert.deepEqual(POLICY.decide(alice, { kind: 'resource', uri }).allowed, false, uri);
    assert.equal(POLICY.visible(alice, { kind: 'resource', uri }), false, uri);
    assert.equal(authorizationFor('resources/read', { uri }).kind, 'invalid', uri);
  }
  // and what is merely another spelling is not refused
  for (const [uri, canonical] of [
    ['file:///srv/%73ecret/key', 'file:///srv/secret/key'],
    ['FILE://LocalHost/srv/./public/../secret/key', 'file:///srv/secret/key'],
    ['file:/srv/a%2bb/x', 'file:///srv/a+b/x'],
    ['file:///srv/caf%c3%a9/x', 'file:///srv/caf%C3%A9/x'],
    ['file:///srv/café/x', 'file:///srv/caf%C3%A9/x'],
    ['file:///srv/100%25', 'file:///srv/100%25'],
    ['file:///srv/a b', 'file:///srv/a%20b'],
    ['HTTPS://Docs.Example.COM:443/a/%7euser', 'https://docs.example.com/a/~user'],
    ['http://0x7f.1/', 'http://127.0.0.1/'],
    ['repo://ACME/x?Q=%61%2f', 'repo://acme/x?Q=a%2F'],
    // a trailing dot is the DNS root: the same host (it escaped a deny on docs.example.com)
    ['https://Docs.Example.COM./private/x', 'https://docs.example.com/private/x'],
    ['https://docs.example.com.:443/private/x', 'https://docs.example.com/private/x'],
    ['repo://acme./x', 'repo://acme/x'],
    ['file://localhost./srv/x', 'file:///srv/x'],
    // an empty query is the path alone (a handler of https://docs.example.com/{path} got "private?")
    ['https://docs.example.com/private?', 'https://docs.example.com/private'],
    ['repo://acme/x?', 'repo://acme/x'],
  ]) assert.equal(canonicalUri(uri as string), canonical, uri);
  assert.equal(POLICY.decide(bob, { kind: 'resource', uri: 'https://docs.example.com./private/x' }).allowed, false);
  assert.equal(canonicalizeUri('https://docs.example.com../x').ok, false);
});

test('the gate refuses a URI without a canonical form as invalid params, and hands on the canonical form of the others', () => {
  const gate = (uri: string) => gateMcpBody({ jsonrpc: '2.0', id: 7, method: 'resources/read', params: { uri } }, { policy: POLICY, identity: alice, headers: { 'mcp-name': uri } });
  const refused = gate('file:///srv/public/%2e%2e/secret/key');
  assert.equal(refused.kind, 'respond');
  const body = (refused as { body: { error: { code: number; message: string; data: { code: string; hint: string } } } }).body;
  assert.equal(body.error.code, -32602);
  assert.match(body.error.message, /resources\/read: resource URI refused: the path has a percent-encoded dot segment/);
  assert.equal(body.error.data.code, 'RESOURCE_URI_INVALID');
  const passed = gate('file:///srv/%73ecret/key');
  assert.equal(passed.kind, 'pass');
  assert.equal((passed as { body: { params: { uri: string } } }).body.params.uri, 'file:///srv/secret/key');
  assert.equal((passed as { mcpName?: string }).mcpName, 'file:///srv/secret/key', 'the Mcp-Name header follows the body');
  // 2026-07-28 clients send a non-ASCII Mcp-Name as =?base64?...?=: it names the body's URI
  const read = (uri: string, name: string) => gateMcpBody({ jsonrpc: '2.0', id: 8, method: 'resources/read', params: { uri } }, { policy: POLICY, identity: alice, headers: { 'mcp-method': 'resources/read', 'mcp-name': name } });
  const cafe = read('file:///srv/café', `=?base64?${Buffer.from('file:///srv/café').toString('base64')}?=`);
  assert.equal(cafe.kind, 'pass', JSON.stringify(cafe));
  assert.equal((cafe as { mcpName?: string }).mcpName, 'file:///srv/caf%C3%A9');
  const bad = read('file:///srv/café', '=?base64?%%%?=');
  assert.equal(bad.kind === 'respond' && bad.status, 400);
  const other = read('file:///srv/café', `=?base64?${Buffer.from('file:///srv/other').toString('base64')}?=`);
  assert.equal(other.kind === 'respond' && other.status, 400);
});

test('resource patterns are checked against the canonical form when the policy is compiled', () => {
  const compile = (pattern: string) => () => policyFromText(`version: 1\nrules:\n  - id: r\n    subjects: { any: true }\n    resources: ["${pattern}"]\n`);
  for (const [pattern, why] of [
    ['FILE:///srv/**', /write "file:\/\/\/srv\/\*\*"/],
    ['file:///srv/%73ecret/**', /write "file:\/\/\/srv\/secret\/\*\*"/],
    ['file:///srv/caf%c3%a9/**', /write "file:\/\/\/srv\/caf%C3%A9\/\*\*"/],
    ['file:///srv/./secret/**', /write "file:\/\/\/srv\/secret\/\*\*"/],
    ['file:///srv/my docs/**', /write "file:\/\/\/srv\/my%20docs\/\*\*"/],
    ['https://Docs.example.com/**', /write "https:\/\/docs.example.com\/\*\*"/],
    ['file:///srv/{public,%73ecret}/**', /write "file:\/\/\/srv\/secret\/\*\*" for the alternative/],
    ['file:///srv/a%2Fb/**', /can never match a request URI: the path has an encoded slash/],
  ] as const) assert.throws(compile(pattern), (e: unknown) => isMtlsError(e, 'POLICY_INVALID') && why.test(e.message), pattern);
  for (const pattern of ['file:///srv/**', '**', '*', '**/secret/**', 'repo://{owner}/{name}', 'https://*.example.com/**', 'file:///srv/[a-z]*', 'file:///srv/a+b/**', 'file:///srv/caf%C3%A9/**']) compile(pattern)();
});

test('lists and completions keep what the same caller could read, item by item (filterResult)', () => {
  const resources = { resources: [{ uri: 'file:///srv/public/a' }, { uri: 'file:///srv/%73ecret/key' }, { uri: 'file:///srv/a%2Fb' }, { name: 'no uri' }, 'junk'] };
  assert.deepEqual(filterResult('resources/list', {}, resources, POLICY, bob), { resources: [{ uri: 'file:///srv/public/a' }] });
  assert.equal((filterResult('resources/list', {}, resources, POLICY, alice) as { resources: unknown[] }).resources.length, 2);
  const ref = { type: 'ref/resource', uri: 'file:///srv/{+path}' };
  const completion = { completion: { values: ['public/a', 'secret/key', '%73ecret/x', 'a/../secret/y'], total: 4, hasMore: false } };
  assert.deepEqual(filterResult('completion/complete', { ref, argument: { name: 'path', value: '' } }, completion, POLICY, bob), { completion: { values: ['public/a'], total: 1, hasMore: false } });
  // a simple {var} expansion encodes "/": such a value names no file below and is not offered
  assert.deepEqual(filterResult('completion/complete', { ref: { type: 'ref/resource', uri: 'file:///srv/{dir}/key' }, argument: { name: 'dir', value: '' } }, { completion: { values: ['secret', 'public', 'a/b'] } }, POLICY, bob), { completion: { values: ['public'] } });
  // a value of one variable while another has no value yet: offered only when some URI it
  // completes could be visible (secret/** is denied to bob whatever {file} becomes)
  const twoVars = { ref: { type: 'ref/resource', uri: 'file:///srv/{dir}/{file}' }, argument: { name: 'dir', value: '' } };
  assert.deepEqual(filterResult('completion/complete', twoVars, { completion: { values: ['public', 'secret', 'a+b'] } }, POLICY, bob), { completion: { values: ['public'] } });
  assert.deepEqual(filterResult('completion/complete', twoVars, { completion: { values: ['public', 'secret', 'a+b'] } }, POLICY, alice), { completion: { values: ['public', 'secret', 'a+b'] } });
  assert.deepEqual(filterResult('completion/complete', { ...twoVars, argument: { name: 'file', value: '' }, context: { arguments: { dir: 'secret' } } }, { completion: { values: ['key'] } }, POLICY, bob), { completion: { values: [] } });
  // a template the caller cannot see completes nothing
  assert.deepEqual(filterResult('completion/complete', { ref: { type: 'ref/resource', uri: 'hr://{x}' }, argument: { name: 'x', value: '' } }, { completion: { values: ['a'] } }, POLICY, bob), { completion: { values: [], total: 0, hasMore: false } });
});

test('a rootless path (mem:public/x, no "/" after the scheme) has no dot or empty segments: refused, as no normalisation keeps it rootless', () => {
  const policy = policyFromText(`
version: 1
rules:
  - id: public-notes
    subjects: { any: true }
    resources: ["mem:public/**"]
`);
  // a handler of the template mem:{+path} joins the path to a directory: each of these names mem:secret/...
  for (const uri of ['mem:public/../secret/key', 'mem:public/%2E%2E/secret/key', 'mem:public/.%2e/secret/key', 'mem:public/./../secret', 'mem:public//x', 'mem:..', 'mem:./public']) {
    const c = canonicalizeUri(uri);
    assert.equal(c.ok, false, `${uri} was accepted as ${JSON.stringify(c)}`);
    assert.match((c as { problem: string }).problem, /dot segment|empty segment/, uri);
    assert.equal(policy.decide(alice, { kind: 'resource', uri }).allowed, false, uri);
    assert.equal(authorizationFor('resources/read', { uri }).kind, 'invalid', uri);
  }
  // what is not a dot segment is kept, and URNs are unaffected
  for (const [uri, canonical] of [
    ['mem:public/a.b/..c', 'mem:public/a.b/..c'],
    ['mem:public/%61/', 'mem:public/a/'],
    ['urn:isbn:0451450523', 'urn:isbn:0451450523'],
    ['urn:x:a%3Bb', 'urn:x:a;b'],
  ]) assert.equal(canonicalUri(uri as string), canonical, uri);
  assert.equal(policy.decide(alice, { kind: 'resource', uri: 'mem:public/a.b/..c' }).allowed, true);
});

test('subscriptions/listen (2026-07-28): each resource subscription is decided as resources/subscribe, and handed on canonical', () => {
  const listen = (uris: unknown) => ({ jsonrpc: '2.0', id: 3, method: 'subscriptions/listen', params: { notifications: { toolsListChanged: true, resourceSubscriptions: uris } } });
  const gate = (who: Identity, body: unknown) => gateMcpBody(body, { policy: POLICY, identity: who, headers: {}, hiddenAnswer: (id, t) => ({ hidden: t, id }) });
  const hidden = gate(bob, listen(['file:///srv/public/a', 'file:///srv/%73ecret/key']));
  assert.equal(hidden.kind, 'respond');
  // answered as the listener answers a hidden target (23bcc1d: per listener and revision), for the canonical URI
  assert.deepEqual(hidden.body, { hidden: { kind: 'resource', uri: 'file:///srv/secret/key' }, id: 3 });
  // a listener that says nothing gets the SDK 2.x words for an unknown resource
  const sdk2 = gateMcpBody(listen(['file:///srv/%73ecret/key']), { policy: POLICY, identity: bob, headers: {} });
  assert.equal(sdk2.kind, 'respond');
  assert.match(JSON.stringify(sdk2.body), /Resource not found: file:\/\/\/srv\/secret\/key|Resource file:\/\/\/srv\/secret\/key not found/);
  const bad = gate(alice, listen(['file:///srv/a%2Fb']));
  assert.equal(bad.kind, 'respond');
  assert.match(JSON.stringify(bad.body), /RESOURCE_URI_INVALID/);
  const ok = gate(alice, listen(['FILE:///srv/%73ecret/key']));
  assert.equal(ok.kind, 'pass');
  assert.deepEqual((ok as { body: { params: { notifications: unknown } } }).body.params.notifications, { toolsListChanged: true, resourceSubscriptions: ['file:///srv/secret/key'] });
  assert.equal(gate(bob, { jsonrpc: '2.0', id: 4, method: 'subscriptions/listen', params: { notifications: { toolsListChanged: true } } }).kind, 'pass');
});
