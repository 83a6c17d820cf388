/**
 * What an identity provider's device flow sends is printed on the person's terminal: an ESC
 * sequence there could retitle the window or overwrite the printed URL and code. The prompt
 * gets URLs (https:) in their WHATWG form and a printable code, or the sign-in is refused;
 * and every error line the CLI prints is terminal-safe (an error_description quoted in it).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { signInWithDevice, type DevicePrompt } from '../../src/client/oidc-sign-in.js';
import { reportError } from '../../src/cli/io.js';
import { MtlsError } from '../../src/errors.js';
import { terminalSafe } from '../../src/util/terminal-text.js';

describe('device prompt from a hostile provider', { timeout: 20_000 }, () => {
  let answer: Record<string, unknown> = {};
  let server: http.Server;
  let config: oidc.Configuration;
  before(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      const body = req.url === '/device' ? answer : { error: 'access_denied', error_description: 'no \x1b]0;pwned\x07 way' };
      res.writeHead(req.url === '/device' ? 200 : 400, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    config = new oidc.Configuration({ issuer: base, device_authorization_endpoint: `${base}/device`, token_endpoint: `${base}/token` }, 'cli', undefined, oidc.None());
    oidc.allowInsecureRequests(config);
  });
  after(() => server.close());
  const provider = { name: 'idp', issuer: 'x', clientId: 'cli', scopes: ['openid'] };

  it('a user_code with an ESC sequence is refused, never shown', async () => {
    answer = { device_code: 'd', user_code: 'AB\x1b[2JCD', verification_uri: 'https://idp.test/device', expires_in: 60 };
    const shown: DevicePrompt[] = [];
    await assert.rejects(signInWithDevice(config, provider, (p) => shown.push(p)), (e: MtlsError) => e.code === 'TOKEN_REFUSED' && /user_code/.test(e.message));
    assert.deepEqual(shown, []);
  });

  it('a verification_uri that is not https: (javascript:, file:) is refused; controls in its path are percent-encoded', async () => {
    answer = { device_code: 'd', user_code: 'ABCD', verification_uri: 'file:///etc/passwd', expires_in: 60 };
    await assert.rejects(signInWithDevice(config, provider, () => assert.fail('shown')), /verification_uri that is not an https: URL/);
    answer = { device_code: 'd', user_code: 'ABCD', verification_uri: 'https://idp.test/dev\x1b]0;x\x07ice', verification_uri_complete: 'https://idp.test/d?c=\x1b[2J', expires_in: 60, interval: 1 };
    const shown: DevicePrompt[] = [];
    // the token endpoint refuses: the flow ends with its (hostile) error_description
    const err = await signInWithDevice(config, provider, (p) => shown.push(p)).catch((e: unknown) => e as MtlsError);
    assert.equal(shown.length, 1);
    assert.doesNotMatch(JSON.stringify(shown[0]), /\\u001b|\\u0007/);
    assert.equal(shown[0]!.verificationUri, 'https://idp.test/dev%1B]0;x%07ice');
    // printed by the CLI, the error line is terminal-safe
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((c: string) => (written.push(String(c)), true)) as typeof process.stderr.write;
    try {
      reportError(err, false);
    } finally {
      process.stderr.write = write;
    }
    assert.match(written.join(''), /pwned/);
    assert.doesNotMatch(written.join(''), /[\x1b\x07]/);
  });

  it('terminalSafe shows C0, C1, DEL and bidi overrides as escapes, keeps newline and tab', () => {
    assert.equal(terminalSafe('a\x1b[31mb\x9bc\x7fd\u202ee\n\tf'), 'a\\u{1b}[31mb\\u{9b}c\\u{7f}d\\u{202e}e\n\tf');
  });
});
