/** Raw HTTPS requests for the forwarded-certificate tests: from a chosen local address, with or without a client certificate, with header lines as given. */
import fs from 'node:fs';
import https from 'node:https';
import { pemEncode, readCertificates } from '../../src/x509/pem.js';

export interface RawAnswer {
  status: number;
  body: string;
  reused: boolean;
}

/** POSTs a JSON-RPC message; `headers` values that are arrays are sent as several header lines. */
export function rawPost(url: string, options: { ca: Buffer | string; cert?: string; key?: string; localAddress?: string; headers?: Record<string, string | string[]>; agent?: https.Agent; body?: unknown }): Promise<RawAnswer> {
  const u = new URL(url);
  const body = JSON.stringify(options.body ?? { jsonrpc: '2.0', id: 1, method: 'tools/list' });
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: u.port,
        path: u.pathname,
        method: 'POST',
        servername: 'localhost',
        ca: options.ca,
        ...(options.cert ? { cert: fs.readFileSync(options.cert), key: fs.readFileSync(options.key as string) } : {}),
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
        ...(options.agent ? { agent: options.agent } : { agent: false }),
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(body), ...(options.headers ?? {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, reused: req.reusedSocket }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The leaf (DER) of a certificate file. */
export const leafOfFile = (file: string): Buffer => readCertificates(fs.readFileSync(file))[0] as Buffer;

/** nginx's `$ssl_client_escaped_cert` for a certificate file's leaf. */
export const nginxEscaped = (file: string): string => encodeURIComponent(pemEncode('CERTIFICATE', leafOfFile(file)));

/** The tool names in a tools/list answer (JSON or one SSE event). */
export function toolNames(body: string): string[] {
  const json = body.startsWith('{') ? body : (/^data: (.*)$/m.exec(body)?.[1] ?? '{}');
  const parsed = JSON.parse(json) as { result?: { tools?: { name: string }[] } };
  return (parsed.result?.tools ?? []).map((t) => t.name).sort();
}
