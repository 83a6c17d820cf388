/**
 * GET of a provider's JSON documents (discovery, JWKS): bounded in time and size, no
 * redirects followed (a document that moved is the operator's to configure), and over https
 * with the system's CAs or the provider's caFile (issuer-url.ts says when http is allowed).
 */
import http from 'node:http';
import https from 'node:https';
import { isLoopbackUrl } from './issuer-url.js';

/** A provider document is a few KiB; a JWKS with many keys a few tens. */
const MAX_BYTES = 512 * 1024;

export class FetchFailed extends Error {}

export function fetchJson(url: string, options: { ca?: string | Buffer; timeoutMs: number }): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(new FetchFailed(`${url} is not a URL`));
      return;
    }
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackUrl(u))) {
      reject(new FetchFailed(`${u.origin} is not https (plain http is accepted on loopback only)`));
      return;
    }
    const get = u.protocol === 'https:' ? https.get : http.get;
    // `timeout` below is the socket's idle time: a server that sends a byte now and then would
    // never trip it, and every sign-in waiting for these keys would wait with it; this bounds the whole fetch
    const deadline = setTimeout(() => req.destroy(new FetchFailed(`${u.href} did not send the whole document within ${options.timeoutMs} ms`)), options.timeoutMs);
    deadline.unref();
    const settle = <T>(f: (v: T) => void) => (v: T) => {
      clearTimeout(deadline);
      f(v);
    };
    resolve = settle(resolve);
    reject = settle(reject);
    const req = get(u, { headers: { accept: 'application/json' }, timeout: options.timeoutMs, ...(options.ca && u.protocol === 'https:' ? { ca: options.ca } : {}) }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new FetchFailed(`${u.href} answered ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BYTES) {
          req.destroy(new FetchFailed(`${u.href} sent more than ${MAX_BYTES} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reject(new FetchFailed(`${u.href} did not send JSON`));
        }
      });
      res.on('error', (e) => reject(new FetchFailed(`${u.href}: ${e.message}`)));
    });
    req.on('timeout', () => req.destroy(new FetchFailed(`${u.href} did not answer within ${options.timeoutMs} ms`)));
    req.on('error', (e) => reject(e instanceof FetchFailed ? e : new FetchFailed(`${u.href}: ${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`.trim())));
  });
}
