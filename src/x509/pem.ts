/** PEM (RFC 7468) encoding and strict decoding. */
import { MtlsError } from '../errors.js';
import { readWhole } from './der.js';

export function pemEncode(label: string, der: Uint8Array): string {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

/** Every PEM block in a text, in order. Throws PEM_MALFORMED on a broken block. */
export function pemDecodeAll(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const [, begin, body, end] = m as unknown as [string, string, string, string];
    if (begin !== end) throw new MtlsError('PEM_MALFORMED', `PEM block "BEGIN ${begin}" ends with "END ${end}"`);
    if (/^[A-Za-z-]+:/m.test(body)) {
      throw new MtlsError('PEM_MALFORMED', `PEM block "${begin}" has headers (legacy encrypted PEM is not supported)`, {
        hint: 'convert the key to PKCS#8: openssl pkcs8 -topk8 -in OLD -out NEW',
      });
    }
    const b64 = body.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
      throw new MtlsError('PEM_MALFORMED', `PEM block "${begin}" has invalid base64`);
    }
    out.push({ label: begin, der: Buffer.from(b64, 'base64') });
  }
  return out;
}

/** True when the bytes are PEM text (possibly after other text, as `openssl x509 -text` writes) rather than DER. */
export function looksLikePem(data: Uint8Array): boolean {
  if (data[0] === 0x30) {
    try {
      readWhole(data); // one complete DER SEQUENCE
      return false;
    } catch {
      // text that happens to start with "0"
    }
  }
  return Buffer.from(data).includes('-----BEGIN ');
}

/** The certificates in PEM text or a single DER certificate, in file order. */
export function readCertificates(data: Uint8Array): Buffer[] {
  if (!looksLikePem(data)) return [Buffer.from(data)];
  const certs = pemDecodeAll(Buffer.from(data).toString('utf8'))
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.der);
  if (certs.length === 0) throw new MtlsError('PEM_MALFORMED', 'no CERTIFICATE block found');
  return certs;
}
