/**
 * Trusting a CA at first use (what `mcp-mtls login` and `enroll` do before they send anything):
 *
 * - with `--ca-fingerprint HEX` (SHA-256 of the root's DER, as `step ca bootstrap` takes it):
 *   GET <ca>/ca/root.crt over TLS *without* verifying the server (there is nothing to verify it
 *   with yet; the request carries nothing), then the root must hash to HEX, else nothing more
 *   happens;
 * - with `--ca-bundle FILE`: the root(s) in a file the operator published (PEM, or a bundle
 *   profile's `ca`), no download.
 *
 * Every later request (the sign-in configuration, the CSR, the ID token or enrollment token)
 * goes through {@link caAgent}: TLS verified against that root only, and the CA's certificate
 * must name the URL's host. The pinned root is written into the bundle, so later runs (renewal,
 * logout) trust it alone.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';
import { MtlsError } from '../errors.js';
import { parseBundleProfile } from '../bundle/profile.js';
import { pemEncode, readCertificates } from '../x509/pem.js';
import { connectionError } from './connect-error.js';
import { sha256Hex } from '../util/sha256.js';

/** The largest answer read from the CA (a chain or a root is a few KiB; the login document less). */
const MAX_ANSWER = 256 * 1024;
const TIMEOUT_MS = 15_000;

/** A fingerprint as people paste it (`AB:CD...`, `abcd...`, any case) as 64 lowercase hex digits. */
export function parseFingerprint(text: string): string {
  // as openssl prints it (`sha256 Fingerprint=AB:CD:...`), with colons, or bare hex
  const hex = text.trim().replace(/^(sha256 fingerprint=|sha256:)/i, '').replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new MtlsError('BAD_ARGUMENT', `--ca-fingerprint "${text}" is not a SHA-256 fingerprint (64 hex digits, colons allowed)`, { hint: 'ask the CA operator for it: `openssl x509 -in root.crt -noout -fingerprint -sha256`, or `mcp-mtls inspect root.crt`' });
  }
  return hex;
}

const colons = (hex: string) => hex.toUpperCase().match(/../g)!.join(':');

/** The CA's base URL: https: only (the CA is always TLS), no query or fragment, no trailing slash. */
export function caBaseUrl(text: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new MtlsError('BAD_ARGUMENT', `--ca "${text}" is not a URL`, { hint: 'e.g. --ca https://ca.acme.test:8443' });
  }
  if (u.protocol !== 'https:') throw new MtlsError('INSECURE_URL', `--ca must be an https: URL (${u.href})`, { hint: '`mcp-mtls ca serve` listens on HTTPS only' });
  if (u.username || u.password) throw new MtlsError('BAD_ARGUMENT', '--ca must not carry a user name or password');
  u.search = '';
  u.hash = '';
  u.pathname = u.pathname.replace(/\/+$/, '');
  return u;
}

/** `base` + `path` (`path` absolute, from the CA's answer or fixed), refused when it leaves the CA's origin. */
export function caEndpoint(base: URL, p: string): URL {
  // the CA's own path prefix (a CA behind a reverse proxy at /ca), then the endpoint's path
  const u = p.startsWith('/') ? new URL(`${base.origin}${base.pathname.replace(/\/+$/, '')}${p}`) : new URL(p, base);
  if (u.origin !== base.origin) throw new MtlsError('BAD_ARGUMENT', `the CA named an endpoint on another origin (${u.origin}, not ${base.origin})`, { hint: 'check the CA URL; its endpoints must be on the same host' });
  return u;
}

function selfSigned(der: Buffer): boolean {
  const c = new crypto.X509Certificate(der);
  return c.ca && c.issuer === c.subject && c.checkIssued(c) && c.verify(c.publicKey);
}

/** The root certificates in a file: PEM certificates (roots only) or a bundle profile's `ca`. */
function rootsFromFile(file: string): Buffer[] {
  let text: Buffer;
  try {
    text = fs.readFileSync(file);
  } catch (cause) {
    throw new MtlsError('FILE_NOT_FOUND', `cannot read --ca-bundle ${file}`, { cause, hint: 'pass the root.crt (or bundle) the CA operator published' });
  }
  const str = text.toString('utf8');
  const certs = str.includes('kind: mcp-mtls/bundle') ? readCertificates(Buffer.from(parseBundleProfile(str, file).ca)) : readCertificates(text);
  const roots = certs.filter(selfSigned);
  if (roots.length === 0) throw new MtlsError('CERT_UNTRUSTED', `--ca-bundle ${file} holds no root CA certificate (self-signed, cA TRUE)`, { hint: "pass the CA's root.crt" });
  return roots;
}

/** One GET over TLS that verifies nothing: only for the public root, whose hash is checked after. */
async function fetchRootUnverified(base: URL): Promise<Buffer> {
  const url = caEndpoint(base, '/ca/root.crt');
  const agent = new Agent({ connect: { rejectUnauthorized: false, minVersion: 'TLSv1.2' } as Agent.Options['connect'] });
  try {
    const res = await undiciFetch(url, { dispatcher: agent, signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
    const body = await boundedBody(res, url);
    if (res.status !== 200) throw new MtlsError('SERVER_UNREACHABLE', `${url.href} answered ${res.status}, not the CA's root certificate`, { hint: 'check --ca: it is the URL of `mcp-mtls ca serve` (which serves /ca/root.crt)' });
    let certs: Buffer[];
    try {
      certs = readCertificates(body);
    } catch (cause) {
      throw new MtlsError('CERT_UNTRUSTED', `${url.href} did not send a certificate`, { cause, hint: 'check --ca' });
    }
    if (certs.length !== 1 || !selfSigned(certs[0]!)) throw new MtlsError('CERT_UNTRUSTED', `${url.href} did not send one root certificate (got ${certs.length}, self-signed: ${certs.length === 1 ? 'no' : '-'})`, { hint: 'check --ca' });
    return certs[0]!;
  } catch (e) {
    throw connectionError(e, url) ?? e;
  } finally {
    await agent.close().catch(() => undefined);
  }
}

/** The root to trust for this CA, checked as described above; nothing secret has been sent when this returns or throws. */
export async function pinRoot(base: URL, pin: { fingerprint?: string; bundleFile?: string }): Promise<{ root: Buffer; sha256: string }> {
  const want = pin.fingerprint !== undefined ? parseFingerprint(pin.fingerprint) : undefined;
  if (pin.bundleFile !== undefined) {
    const roots = rootsFromFile(pin.bundleFile);
    const root = want ? roots.find((r) => sha256Hex(r) === want) : roots[0];
    if (!root) throw new MtlsError('CERT_UNTRUSTED', `no root in ${pin.bundleFile} has the fingerprint ${colons(want!)}`, { hint: 'check the fingerprint and the file with the CA operator' });
    if (!want && roots.length > 1) throw new MtlsError('BAD_ARGUMENT', `${pin.bundleFile} holds ${roots.length} roots: say which with --ca-fingerprint`);
    return { root, sha256: sha256Hex(root) };
  }
  if (!want) {
    throw new MtlsError('USAGE', 'the CA is not trusted yet: pass --ca-fingerprint HEX (the SHA-256 of its root, from the operator) or --ca-bundle FILE (the root the operator published)', {
      hint: 'the operator prints it with `openssl x509 -in pki/root.crt -noout -fingerprint -sha256`',
    });
  }
  const root = await fetchRootUnverified(base);
  const got = sha256Hex(root);
  // equal-length hex strings: timingSafeEqual keeps the comparison constant-time anyway
  if (!crypto.timingSafeEqual(Buffer.from(got), Buffer.from(want))) {
    throw new MtlsError('CERT_UNTRUSTED', `the CA at ${base.origin} presented a root whose SHA-256 is ${colons(got)}, not ${colons(want)}: refused, nothing was sent`, {
      hint: 'check the fingerprint with the CA operator; a different root may mean someone is between you and the CA',
    });
  }
  return { root, sha256: got };
}

/** An Agent that trusts `root` alone and checks the CA's host name (Node's default check). */
export function caAgent(root: Buffer): Agent {
  return new Agent({ connect: { ca: [pemEncode('CERTIFICATE', root)], rejectUnauthorized: true, minVersion: 'TLSv1.2' } as Agent.Options['connect'] });
}

/** A CA answer, read whole (bounded). */
export interface CaAnswer {
  readonly status: number;
  readonly type: string;
  readonly body: Buffer;
}

async function boundedBody(res: Response | Awaited<ReturnType<typeof undiciFetch>>, url: URL): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += (chunk as Uint8Array).length;
    if (size > MAX_ANSWER) throw new MtlsError('SERVER_UNREACHABLE', `${url.href} sent more than ${MAX_ANSWER} bytes`, { hint: 'check --ca' });
    chunks.push(Buffer.from(chunk as Uint8Array));
  }
  return Buffer.concat(chunks);
}

/** One request to the CA through `agent` (see {@link caAgent}); connection failures as SERVER_UNREACHABLE / SERVER_CERT_INVALID. */
export async function caRequest(agent: Agent, url: URL, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<CaAnswer> {
  try {
    const res = await undiciFetch(url, { dispatcher: agent, method: init.method ?? 'GET', headers: init.headers ?? {}, ...(init.body !== undefined ? { body: init.body } : {}), signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: await boundedBody(res, url) };
  } catch (e) {
    const c = connectionError(e, url);
    if (c?.code === 'SERVER_CERT_INVALID') {
      throw new MtlsError('SERVER_CERT_INVALID', `${c.message.replace(/the bundle's CA/g, 'the pinned root')}`, { cause: e, hint: "the CA's TLS certificate must be issued under the pinned root for this host name: check --ca (the host the CA's certificate names)" });
    }
    throw c ?? e;
  }
}

/** The CA's `{error:{code,message,hint}}`, or the first bytes of whatever it sent. */
export function caErrorOf(a: CaAnswer): { code?: string; message: string; hint?: string } {
  if (a.type.includes('json')) {
    try {
      const e = (JSON.parse(a.body.toString('utf8')) as { error?: { code?: string; message?: string; hint?: string } }).error;
      if (e?.message) return { ...(e.code ? { code: e.code } : {}), message: e.message, ...(e.hint ? { hint: e.hint } : {}) };
    } catch {
      // not JSON after all
    }
  }
  return { message: a.body.toString('utf8').slice(0, 200) || 'no reason given' };
}
