/**
 * The one canonical form of a resource URI, on which every resource decision is made (policy
 * evaluation for the SDK adapters, the gateway and `policy explain`), and which is what the
 * server or upstream is then asked to read: what was decided is what is read.
 *
 * Written here, not with WHATWG `new URL()` (used before, issue 16): WHATWG does not do the
 * RFC 3986 §6.2.2 normalisation. It keeps `%73` as `%73` and keeps hex case, while
 * `fileURLToPath` and most handlers decode them, so `file:///srv/%73ecret/key` escaped a deny
 * on `file:///srv/secret/**` and read the secret. It also reads `\` as `/`, drops tabs and
 * newlines, and treats `%2e%2e` as `..`: a policy must not have to guess any of that.
 *
 * The canonical form (RFC 3986 §6.2.2 and §6.2.3, made stricter for paths):
 * - scheme and host lowercase, without a trailing dot (`example.com.` is `example.com` to DNS);
 *   for the WHATWG "special" schemes (http, https, ws, wss, ftp, file) the host as WHATWG
 *   parses it (IPv4 numbers like `0x7f.1` become `127.0.0.1`), a default port dropped,
 *   `file://localhost/` is `file:///`, `file:/p` is `file:///p`;
 * - in the path every percent-encoded octet is decoded, and every character written one way
 *   only: unreserved characters, sub-delimiters (except `;`), `:` and `@` as themselves, any
 *   other character (`?`, `#`, `%`, space, `[`, non-ASCII ...) as its UTF-8 octets, `%XX` with
 *   uppercase hex. This goes beyond §6.2.2 (which decodes unreserved characters only) because
 *   file handlers decode `%2B` and `+` to the same name: two spellings, one file, one decision;
 * - dot segments removed (§5.2.4); in a rootless path (`mem:a/b`, no `/` after the scheme),
 *   where removing them could not keep it rootless, refused;
 * - in a query (not allowed in `file:`), only §6.2.2: unreserved characters decoded, hex
 *   uppercase (a query's `%26` and `&` differ); an empty query (`x?`) dropped.
 *
 * Refused, because decoding them could still change the path a handler acts on, or
 * handlers disagree about them: `%2F` and `%5C` (encoded slashes), a raw `\`, an encoded
 * dot segment (`%2E%2E`, `.%2e`), control characters raw or encoded (`%00` truncates C
 * strings, tabs and newlines vanish in WHATWG), invalid UTF-8 after decoding, a `%` without
 * two hex digits, `%25` followed by two hex digits (a double encoding: one more decode
 * changes the name), empty segments (`/srv//secret` is `/srv/secret` on disk), `;` in a
 * hierarchical path (path parameters, which some servers strip: `secret;x` is `secret`),
 * user information (`user@`), a fragment (`#`: never part of what a server reads; a handler
 * that ignores it would let `x#y` escape a deny on `x`), a query in a `file:` URI (ignored
 * by `fileURLToPath`, same reason), a host with `%` or non-ASCII characters, and anything
 * that is not an absolute URI.
 */
import { MtlsError } from '../errors.js';

/** The result of {@link canonicalizeUri}: the canonical URI, or why there is none. */
export type CanonicalUri = { readonly ok: true; readonly uri: string } | { readonly ok: false; readonly problem: string };

/** What a canonical hierarchical path keeps unencoded: unreserved, sub-delims but `;`, `:`, `@`. */
const PATH_RAW = /^[A-Za-z0-9\-._~!$&'()*+,=:@]$/;
/** An opaque path (`urn:a:b`) has no path parameters: `;` stays. */
const OPAQUE_RAW = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]$/;
const QUERY_RAW = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/?]$/;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const HEX2 = /^[0-9A-Fa-f]{2}$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;
const SPECIAL = new Set(['http', 'https', 'ws', 'wss', 'ftp', 'file']);
const DEFAULT_PORT: Record<string, string> = { http: '80', https: '443', ws: '80', wss: '443', ftp: '21' };
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

class Refused extends Error {}
const refuse = (problem: string): never => {
  throw new Refused(problem);
};

/** One character of a component, and whether it was percent-encoded. */
interface Unit {
  readonly ch: string;
  readonly encoded: boolean;
}

const isControl = (ch: string): boolean => {
  const c = ch.codePointAt(0) as number;
  return c < 0x20 || c === 0x7f;
};

function pct(ch: string): string {
  let out = '';
  for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** Decodes the percent-encoded octets of a component (strict UTF-8), character by character. */
function decode(raw: string, where: string): Unit[] {
  const units: Unit[] = [];
  for (let i = 0; i < raw.length; ) {
    if (raw[i] !== '%') {
      const ch = String.fromCodePoint(raw.codePointAt(i) as number);
      units.push({ ch, encoded: false });
      i += ch.length;
      continue;
    }
    const bytes: number[] = [];
    while (raw[i] === '%') {
      const h = raw.slice(i + 1, i + 3);
      if (!HEX2.test(h)) refuse(`the ${where} has a "%" not followed by two hex digits`);
      bytes.push(parseInt(h, 16));
      i += 3;
    }
    let text: string;
    try {
      text = utf8.decode(Uint8Array.from(bytes));
    } catch {
      return refuse(`the ${where} has percent-encoded octets that are not UTF-8`);
    }
    for (const ch of text) units.push({ ch, encoded: true });
  }
  for (let i = 0; i < units.length; i++) {
    const u = units[i] as Unit;
    if (isControl(u.ch)) refuse(`the ${where} has a ${u.encoded ? 'percent-encoded ' : ''}control character (such as %00 or a newline)`);
    if (u.ch === '\\') refuse(`the ${where} has a ${u.encoded ? 'percent-encoded (%5C) ' : ''}backslash, which some parsers read as "/"`);
    // %25 then two hex digits: one more decode (a handler that decodes twice) makes another octet
    if (u.ch === '%' && u.encoded && HEX2.test(`${units[i + 1]?.ch ?? ''}${units[i + 2]?.ch ?? ''}`)) refuse(`the ${where} has a double percent-encoding ("%25" followed by two hex digits)`);
  }
  return units;
}

function path(raw: string, hierarchical: boolean): string {
  if (!hierarchical) {
    // a rootless path (`mem:public/../secret`) has segments too, which handlers join to a
    // directory: its dot segments (raw or encoded) and empty segments are refused, as no
    // normalisation would keep it rootless (found in review, issue 16)
    const segments = raw.split('/');
    return segments
      .map((segment, i) => {
        const units = decode(segment, 'path');
        if (units.some((u) => u.ch === '/')) refuse('the path has an encoded slash (%2F)');
        const text = units.map((u) => u.ch).join('');
        if (text === '.' || text === '..') refuse(`the path has a ${units.some((u) => u.encoded) ? 'percent-encoded ' : ''}dot segment ("." or "..") in a path without "/" in front, which no normalisation removes`);
        if (units.length === 0 && i > 0 && i < segments.length - 1) refuse('the path has an empty segment ("//"), which file systems and many servers read as "/"');
        return units.map((u) => (OPAQUE_RAW.test(u.ch) ? u.ch : pct(u.ch))).join('');
      })
      .join('/');
  }
  const segments = raw.split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const last = i === segments.length - 1;
    const units = decode(segments[i] as string, 'path');
    const text = units.map((u) => u.ch).join('');
    if (text === '.' || text === '..') {
      if (units.some((u) => u.encoded)) refuse('the path has a percent-encoded dot segment (such as %2E%2E)');
      if (text === '..') out.pop();
      if (last) out.push('');
      continue;
    }
    for (const u of units) {
      if (u.ch === '/') refuse('the path has an encoded slash (%2F)');
      if (u.ch === ';') refuse('the path has a ";" (path parameters, which some servers strip)');
    }
    if (units.length === 0 && !last) refuse('the path has an empty segment ("//"), which file systems and many servers read as "/"');
    out.push(units.map((u) => (PATH_RAW.test(u.ch) ? u.ch : pct(u.ch))).join(''));
  }
  return segments.length === 1 ? '' : `/${out.join('/')}`;
}

function query(raw: string): string {
  return decode(raw, 'query')
    .map((u) => (u.encoded ? (UNRESERVED.test(u.ch) ? u.ch : pct(u.ch)) : QUERY_RAW.test(u.ch) ? u.ch : pct(u.ch)))
    .join('');
}

function authority(raw: string, scheme: string): string {
  if (raw.includes('@')) refuse('the URI has user information ("user@")');
  const m = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(raw);
  if (!m) return refuse('the authority is malformed');
  let host = (m[1] as string).toLowerCase();
  let port = m[2] ?? '';
  if (!/^(\[[0-9a-f:.]*\]|[a-z0-9\-._~!$&'()*+,;=]*)$/.test(host)) refuse('the host has percent-encoding or characters a host cannot have');
  if (!/^\d*$/.test(port)) refuse('the port is not a number');
  port = port.replace(/^0+(?=\d)/, '');
  if (port === DEFAULT_PORT[scheme]) port = '';
  if (SPECIAL.has(scheme) && host !== '') {
    try {
      host = new URL(`${scheme}://${host}/`).hostname; // IPv4 forms and IDNA, as clients connect
    } catch {
      refuse('the host is not a valid host name');
    }
  }
  // `docs.example.com.` is `docs.example.com` to DNS, so to whoever fetches it: one name, one
  // decision (found in review, issue 16: the trailing dot escaped a deny on the host)
  if (host.endsWith('.') && !host.startsWith('[')) {
    host = host.slice(0, -1);
    if (host === '' || host.endsWith('.')) refuse('the host ends in an empty label ("..")');
  }
  if (scheme === 'file' && host === 'localhost') host = '';
  return port === '' ? host : `${host}:${port}`;
}

function canonical(uri: string): string {
  if (LONE_SURROGATE.test(uri)) refuse('the URI is not valid Unicode');
  const m = /^([^:/?#]+):(\/\/([^/?#]*))?([^?#]*)(\?([^#]*))?(#.*)?$/s.exec(uri);
  if (!m || !SCHEME.test(m[1] as string)) return refuse('it is not an absolute URI (scheme:...)');
  const scheme = (m[1] as string).toLowerCase();
  let auth = m[2] === undefined ? undefined : (m[3] as string);
  const rawPath = m[4] as string;
  if (m[7] !== undefined) refuse('the URI has a fragment ("#..."), which is not part of the resource');
  if (scheme === 'file') {
    if (m[5] !== undefined) refuse('a file: URI has a query ("?..."), which file handlers ignore');
    if (auth === undefined) {
      if (!rawPath.startsWith('/')) refuse('a file: URI needs an absolute path (file:///...)');
      auth = '';
    }
  }
  const host = auth === undefined ? undefined : authority(auth, scheme);
  const hierarchical = auth !== undefined || rawPath.startsWith('/');
  let p = path(hierarchical && !rawPath.startsWith('/') && rawPath !== '' ? `/${rawPath}` : rawPath, hierarchical);
  if (p === '' && host !== undefined && SPECIAL.has(scheme)) p = '/';
  // an empty query (`/private?`) is the path alone to every server: dropped, or it escaped a deny on the path
  return `${scheme}:${host === undefined ? '' : `//${host}`}${p}${m[5] === undefined || m[6] === '' ? '' : `?${query(m[6] as string)}`}`;
}

/**
 * The canonical form of a resource URI, on which policy decides and which the server is
 * handed, or the problem that refuses it: scheme and host lowercase, every percent-encoded
 * path octet decoded and each character written one way only (`-._~!$&'()*+,=:@`, letters and
 * digits as themselves, the rest as UTF-8 `%XX`, uppercase), dot segments removed. Refused:
 * encoded `/` or `\`, encoded dot segments, control characters, invalid UTF-8, double
 * encodings, empty segments, `;` in a path, user information, fragments, queries in `file:`
 * URIs. Never throws; a canonical URI is its own canonical form.
 */
export function canonicalizeUri(uri: string): CanonicalUri {
  const hit = cache.get(uri);
  if (hit) return hit;
  let c: CanonicalUri;
  try {
    c = { ok: true, uri: canonical(uri) };
  } catch (e) {
    if (!(e instanceof Refused)) throw e;
    c = { ok: false, problem: e.message };
  }
  if (uri.length <= CACHE_URI) {
    if (cache.size >= CACHE_SIZE) cache.clear();
    cache.set(uri, c);
  }
  return c;
}

// 3-10 µs per URI uncached, and the gate, the policy and list filters ask about the same URIs:
// the last few thousand short ones are kept (at most about 8 MB, whatever clients send)
const CACHE_SIZE = 4096;
const CACHE_URI = 1024;
const cache = new Map<string, CanonicalUri>();

/** What to do about a refused URI, for error hints. */
export const URI_HINT = 'send the URI without percent-encoded "/", "\\" or dot segments, control characters, empty segments, ";" parameters, user information or a fragment';

/**
 * {@link canonicalizeUri} that throws.
 *
 * @throws MtlsError `RESOURCE_URI_INVALID` naming the problem, with a hint
 */
export function canonicalUri(uri: string): string {
  const c = canonicalizeUri(uri);
  if (c.ok) return c.uri;
  throw new MtlsError('RESOURCE_URI_INVALID', `resource URI refused: ${c.problem}`, { hint: URI_HINT, details: { uri: uri.slice(0, 200) } });
}

/**
 * The form in which a resource template (`file:///srv/{+path}`) is matched against policy
 * patterns: each expression becomes one opaque token (`%7Bpath%7D` in the path, `_owner_` in
 * the host, where `%` cannot be), the rest is canonicalized as a URI. Used for
 * `resources/templates/list` and template completions alike.
 */
export function canonicalizeTemplate(template: string): CanonicalUri {
  const hostEnd = /^[^:/?#]+:\/\/[^/?#]*/.exec(template)?.[0].length ?? 0;
  return canonicalizeUri(template.replace(/\{([^{}]*)\}/g, (_e, body: string, at: number) => {
    const name = body.replace(/[^A-Za-z0-9_.~-]/g, '');
    return at < hostEnd ? `_${name.toLowerCase()}_` : `%7B${name}%7D`;
  }));
}
