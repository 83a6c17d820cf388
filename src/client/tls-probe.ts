/**
 * `inspect https://host:port`: what a TLS server shows a client that has no certificate: its
 * chain, and whether it asks for a client certificate and from which CAs.
 *
 * Node's TLS client has no API for the server's CertificateRequest (OpenSSL's
 * SSL_get_client_CA_list is not exposed), so the handshake is made by Node as usual, over a
 * stream that also records the bytes the server sent, and the CertificateRequest is read from
 * that recording by the small reader below. That works where the message is in clear: TLS 1.2
 * (RFC 5246 7.4.4). In TLS 1.3 it is encrypted; against a server that speaks only TLS 1.3 the
 * answer is "unknown", never a guess.
 */
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { MtlsError } from '../errors.js';
import { formatName } from '../x509/certificate.js';

/**
 * What {@link probeTlsServer} learnt about the server's request for a client certificate. Each
 * field is `'unknown'` when the handshakes could not tell (see `reason`), never a guess.
 */
export interface ClientCertificateRequest {
  /** whether the server sends a CertificateRequest */
  readonly requested: boolean | 'unknown';
  /** whether the server ends a handshake without a client certificate (else it may still refuse later, e.g. with HTTP 401) */
  readonly required: boolean | 'unknown';
  /** the CA names of the CertificateRequest ("CN=..., O=..."), in the server's order; empty: it names none */
  readonly acceptedCas: readonly string[] | 'unknown';
  /** the same names as DER, hex */
  readonly acceptedCasDer?: readonly string[];
  /** how it was learnt, or why not */
  readonly source: string;
}

/** What {@link probeTlsServer} saw. */
export interface TlsProbeResult {
  readonly host: string;
  readonly port: number;
  /** the address connected to */
  readonly address: string;
  /** e.g. TLSv1.3, for a client offering its default versions */
  readonly protocol: string;
  readonly cipher: string;
  /**
   * the chain, leaf first (DER): as the server sent it (its TLS 1.2 Certificate message, in
   * clear), else, from a TLS 1.3-only server, as Node's client reports it after verification
   * (which may end with the local root that verified it)
   */
  readonly chain: readonly Buffer[];
  readonly chainSource: 'sent' | 'verified';
  /** whether the chain verifies against `ca` (Node's roots when none) and names `host` */
  readonly verified: { readonly ok: boolean; readonly reason?: string };
  readonly clientCertificate: ClientCertificateRequest;
}

/** Options of {@link probeTlsServer}. */
export interface TlsProbeOptions {
  /** roots to verify the chain against (PEM or DER buffers); default Node's bundled roots */
  readonly ca?: readonly (string | Buffer)[];
  /** give up after this long, per connection; default 10 s */
  readonly timeoutMs?: number;
}

interface Handshake {
  /** what the client saw when its handshake completed (absent: it never did) */
  readonly secure?: { peer: tls.DetailedPeerCertificate; protocol: string; cipher: string; authorized: boolean; authorizationError?: string };
  /** the server accepted the connection without a client certificate: TLS 1.2 Finished, or a TLS 1.3 session ticket */
  readonly accepted: boolean;
  readonly error?: NodeJS.ErrnoException;
  /** everything the server sent */
  readonly received: Buffer;
  readonly address: string;
}

/**
 * Connects to `host:port` without a client certificate (a second time offering at most TLS 1.2
 * when the first handshake was TLS 1.3, to read the CertificateRequest in clear) and reports
 * the chain, its verification, and the server's request for a client certificate.
 *
 * @throws MtlsError `SERVER_UNREACHABLE` when no TLS handshake with the server completes
 */
export async function probeTlsServer(host: string, port: number, options: TlsProbeOptions = {}): Promise<TlsProbeResult> {
  const first = await handshake(host, port, options, undefined);
  if (!first.secure) {
    const e = first.error;
    throw new MtlsError('SERVER_UNREACHABLE', `no TLS handshake with ${host}:${port}: ${e?.code ? `${e.code}: ` : ''}${e?.message ?? 'closed'}`, {
      cause: e,
      hint: 'check the host and port, and that the server speaks TLS there (https)',
    });
  }
  const { peer, protocol, cipher } = first.secure;
  let verified: TlsProbeResult['verified'] = first.secure.authorized ? { ok: true } : { ok: false, reason: first.secure.authorizationError ?? 'not verified' };
  if (verified.ok) {
    const nameError = tls.checkServerIdentity(host, peer);
    if (nameError) verified = { ok: false, reason: nameError.message };
  }
  let clientCertificate = protocol === 'TLSv1.2' ? requestFrom(first) : undefined;
  let sent = protocol === 'TLSv1.2' ? certificatesFrom(first) : undefined;
  if (!clientCertificate) {
    const legacy = await handshake(host, port, options, 'TLSv1.2');
    clientCertificate = requestFrom(legacy) ?? tls13Only(first, legacy);
    sent ??= certificatesFrom(legacy);
  }
  return { host, port, address: first.address, protocol, cipher, chain: sent ?? chainOf(peer), chainSource: sent ? 'sent' : 'verified', verified, clientCertificate };
}

/** What a TLS 1.3 handshake tells: only a refusal (alert certificate_required) is certain. */
function tls13Only(first: Handshake, legacy: Handshake): ClientCertificateRequest {
  const refusal = legacy.error?.code ?? legacy.error?.message.split('\n')[0] ?? 'no TLS 1.2 ServerHello';
  const why = `the server does not speak TLS 1.2 (${refusal}), and in TLS 1.3 the CertificateRequest is encrypted`;
  if (first.error?.code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') {
    return { requested: true, required: true, acceptedCas: 'unknown', source: `TLS 1.3: the server ended the handshake with alert certificate_required; its CA names are unknown: ${why}` };
  }
  return { requested: 'unknown', required: first.accepted ? false : 'unknown', acceptedCas: 'unknown', source: first.accepted ? `TLS 1.3: the server accepted a connection without a certificate; whether it asks for one is unknown: ${why}` : `unknown: ${why}` };
}

/** The CertificateRequest of a recorded TLS 1.2 handshake (or its certain absence); undefined when the recording holds no TLS 1.2 server flight. */
function requestFrom(h: Handshake): ClientCertificateRequest | undefined {
  const messages = handshakeMessages(h.received);
  const hello = messages.find((m) => m.type === HS.serverHello);
  // the legacy_version of a TLS 1.3 ServerHello says 1.2 too: only the TLS 1.2 negotiation counts
  if (!hello || (h.secure && h.secure.protocol !== 'TLSv1.2')) return undefined;
  const source = 'TLS 1.2 CertificateRequest, read in clear from the handshake';
  const req = messages.find((m) => m.type === HS.certificateRequest);
  if (!req) {
    // the server's first flight is in clear up to ServerHelloDone: no request in it is a "no"
    if (messages.some((m) => m.type === HS.serverHelloDone)) return { requested: false, required: false, acceptedCas: [], source: 'TLS 1.2 handshake: no CertificateRequest before ServerHelloDone' };
    return undefined;
  }
  let names: Buffer[];
  try {
    names = parseCertificateRequest(req.body);
  } catch (e) {
    return { requested: true, required: h.secure ? !h.accepted : 'unknown', acceptedCas: 'unknown', source: `TLS 1.2 CertificateRequest: ${(e as Error).message}` };
  }
  return { requested: true, required: !h.accepted, acceptedCas: names.map(safeName), acceptedCasDer: names.map((n) => n.toString('hex')), source };
}

/** The certificate_list of a recorded TLS 1.2 Certificate message (RFC 5246 7.4.2: 24-bit lengths), or undefined. */
function certificatesFrom(h: Handshake): Buffer[] | undefined {
  const m = handshakeMessages(h.received).find((x) => x.type === HS.certificate);
  if (!m || m.body.length < 3) return undefined;
  const end = 3 + m.body.readUIntBE(0, 3);
  if (end !== m.body.length) return undefined;
  const out: Buffer[] = [];
  for (let at = 3; at < end; ) {
    if (at + 3 > end) return undefined;
    const n = m.body.readUIntBE(at, 3);
    if (at + 3 + n > end) return undefined;
    out.push(Buffer.from(m.body.subarray(at + 3, at + 3 + n)));
    at += 3 + n;
  }
  return out.length > 0 ? out : undefined;
}

const safeName = (der: Buffer): string => {
  try {
    return formatName(der);
  } catch {
    return `(unreadable name, ${der.length} bytes)`;
  }
};

function chainOf(peer: tls.DetailedPeerCertificate): Buffer[] {
  const out: Buffer[] = [];
  const seen = new Set<string>();
  for (let c: tls.DetailedPeerCertificate | undefined = peer; c && c.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    out.push(c.raw);
  }
  return out;
}

/**
 * One handshake without a client certificate, made by Node's TLS client over a stream that
 * records what the server sends. Settles when the server has accepted the connection (TLS 1.2:
 * the handshake completed, its Finished follows the certificate check; TLS 1.3: a session
 * ticket arrived, which the server sends only after it checked the client's Certificate), or
 * refused it, or after `timeoutMs`.
 */
function handshake(host: string, port: number, options: TlsProbeOptions, maxVersion: tls.SecureVersion | undefined): Promise<Handshake> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const tcp = net.connect({ host, port });
    let address = `${host}:${port}`;
    const wire = new Duplex({
      read() {},
      write(chunk, _enc, done) {
        tcp.write(chunk, done);
      },
      final(done) {
        tcp.end();
        done();
      },
    });
    tcp.on('connect', () => (address = `${tcp.remoteAddress}:${tcp.remotePort}`));
    tcp.on('data', (d: Buffer) => {
      chunks.push(d);
      wire.push(d);
    });
    tcp.on('end', () => wire.push(null));
    let secure: Handshake['secure'];
    let settled = false;
    const finish = (accepted: boolean, error?: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      tcp.destroy();
      resolve({ ...(secure ? { secure } : {}), accepted, ...(error ? { error } : {}), received: Buffer.concat(chunks), address });
    };
    const ms = options.timeoutMs ?? 10_000;
    const timer = setTimeout(() => finish(false, Object.assign(new Error(`no answer within ${ms} ms`), { code: 'ETIMEDOUT' })), ms);
    tcp.on('error', (e) => finish(false, e));
    const socket = tls.connect({
      socket: wire as unknown as net.Socket,
      ...(net.isIP(host) ? {} : { servername: host }),
      rejectUnauthorized: false,
      ...(options.ca ? { ca: [...options.ca] } : {}),
      ...(maxVersion ? { maxVersion } : {}),
    });
    socket.on('secureConnect', () => {
      const cipher = socket.getCipher();
      secure = {
        peer: socket.getPeerCertificate(true),
        protocol: socket.getProtocol() ?? 'unknown',
        cipher: cipher?.name ?? 'unknown',
        authorized: socket.authorized,
        ...(socket.authorizationError ? { authorizationError: String(socket.authorizationError) } : {}),
      };
      if (secure.protocol !== 'TLSv1.3') finish(true);
      // TLS 1.3: a ticket or a refusal follows at once from a server that sends either; one that
      // sends neither leaves `accepted` unknown (false) after a short wait, not the whole timeout
      else setTimeout(() => finish(false), Math.min(ms, 2000)).unref();
    });
    socket.on('end', () => finish(false, Object.assign(new Error('the server closed the connection'), { code: 'ECONNRESET' })));
    tcp.on('close', () => finish(false, Object.assign(new Error('the server closed the connection'), { code: 'ECONNRESET' })));
    socket.on('session', () => finish(true));
    socket.on('error', (e) => finish(false, e));
    socket.on('close', () => finish(false, Object.assign(new Error('the server closed the connection'), { code: 'ECONNRESET' })));
  });
}

// The reader of recorded TLS records: only what is in clear before the server's
// ChangeCipherSpec (record type 20), i.e. the server's first flight of a TLS 1.2 handshake.
const RECORD = { changeCipherSpec: 20, alert: 21, handshake: 22 } as const;
const HS = { serverHello: 2, certificate: 11, certificateRequest: 13, serverHelloDone: 14 } as const;

/** The handshake messages in the records the server sent, up to its ChangeCipherSpec. */
export function handshakeMessages(bytes: Buffer): { type: number; body: Buffer }[] {
  const payload: Buffer[] = [];
  for (let at = 0; at + 5 <= bytes.length; ) {
    const type = bytes[at] as number;
    const length = bytes.readUInt16BE(at + 3);
    if (at + 5 + length > bytes.length) break; // a record cut short
    if (type === RECORD.changeCipherSpec) break; // encrypted from here on
    if (type === RECORD.handshake) payload.push(bytes.subarray(at + 5, at + 5 + length));
    else if (type !== RECORD.alert) break; // application data, or not TLS
    at += 5 + length;
  }
  const stream = Buffer.concat(payload);
  const out: { type: number; body: Buffer }[] = [];
  for (let at = 0; at + 4 <= stream.length; ) {
    const type = stream[at] as number;
    const length = stream.readUIntBE(at + 1, 3);
    if (at + 4 + length > stream.length) break;
    out.push({ type, body: stream.subarray(at + 4, at + 4 + length) });
    at += 4 + length;
  }
  return out;
}

/**
 * The certificate_authorities of a TLS 1.2 CertificateRequest body (RFC 5246 7.4.4):
 * certificate_types<1..255>, supported_signature_algorithms<2..2^16-2>, then
 * DistinguishedName certificate_authorities<0..2^16-1>, each an opaque<1..2^16-1> DER Name.
 *
 * @throws Error when the lengths do not add up
 */
export function parseCertificateRequest(body: Buffer): Buffer[] {
  const bad = (what: string) => new Error(`malformed (${what})`);
  let at = 0;
  const need = (n: number, what: string) => {
    if (at + n > body.length) throw bad(what);
  };
  need(1, 'certificate_types');
  at += 1 + (body[0] as number);
  need(2, 'supported_signature_algorithms');
  at += 2 + body.readUInt16BE(at);
  need(2, 'certificate_authorities');
  const end = at + 2 + body.readUInt16BE(at);
  at += 2;
  if (end !== body.length) throw bad('certificate_authorities length');
  const names: Buffer[] = [];
  while (at < end) {
    need(2, 'a DistinguishedName');
    const n = body.readUInt16BE(at);
    at += 2;
    need(n, 'a DistinguishedName');
    names.push(body.subarray(at, at + n));
    at += n;
  }
  return names;
}
