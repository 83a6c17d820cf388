/** `mcp-mtls ca serve`: the CA online over HTTPS (CRLs, renewal over mTLS, enrollment with tokens). */
import { createConsole } from '../console/console.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import { parseDuration } from '../util/duration.js';
import { createCaServer } from '../ca/serve/server.js';
import { MtlsError } from '../errors.js';
import { readCertificates } from '../x509/pem.js';
import { STORE_HELP } from './io.js';
import { openAuthority } from './issue.js';

/** HOST:PORT, [v6]:PORT */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new MtlsError('USAGE', `--listen "${text}" is not HOST:PORT`, { hint: 'e.g. --listen 0.0.0.0:8443 or --listen [::1]:8443 (port 0 picks a free one)' });
  return { host: (m[1] ?? m[2]) as string, port };
}

function positiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new MtlsError('USAGE', `${flag} must be a positive whole number, not "${v}"`);
    return n;
  };
}

export function registerServe(ca: Command): void {
  ca.command('serve')
    .description('run the CA online over HTTPS: CRLs, certificate renewal over mTLS, enrollment with one-time tokens')
    .requiredOption('--listen <host:port>', 'where to listen, e.g. 0.0.0.0:8443')
    .option('--dir <dir>', 'CA folder (default: $MCP_MTLS_PKI_DIR or ./pki)')
    .option('--store <url>', STORE_HELP)
    .option('--tls-cert <file>', "this server's certificate chain, issued by this CA (`mcp-mtls issue server`)")
    .option('--tls-key <file>', "this server's key")
    .option('--renew-burst <n>', 'renewals a principal may make at once', positiveInt('--renew-burst'), 3)
    .option('--renew-per-minute <n>', 'renewals per minute a principal gets back', positiveInt('--renew-per-minute'), 3)
    .option('--crl-check <duration>', 'how often to re-sign CRLs that are due', '1m')
    .option('--crl-max-age <duration>', 'longest Cache-Control max-age of a CRL', '5m')
    .option('--grace <duration>', 'on SIGTERM: how long requests in flight may take to finish', '10s')
    .option('--passphrase-file <file>', 'passphrase of an encrypted CA key (else $MCP_MTLS_PASSPHRASE)')
    .option('--decisions-file <file>', "the JSON-lines audit file the console's Decisions page reads (servers' createAuditLog(file), gateway.yaml audit:); sets or overrides config.yaml console.decisions.file")
    .option('--json', 'log messages as JSON on stderr too')
    .addHelpText(
      'after',
      `
The server needs its own certificate from this CA; it does not make one:
  $ mcp-mtls issue server --dns ca.acme.test --out ./ca-tls
  $ MCP_MTLS_PASSPHRASE=... mcp-mtls ca serve --listen 0.0.0.0:8443 --tls-cert ./ca-tls/ca.acme.test.crt --tls-key ./ca-tls/ca.acme.test.key

Endpoints: GET /crl/root.crl, GET /crl/intermediate.crl (DER), POST /renew (mTLS, body: CSR or empty),
POST /sign (Authorization: Bearer <token from \`mcp-mtls token create\`>, body: CSR), GET /healthz, GET /metrics.
GET /console/: the operator console (the operator's client certificate; config.yaml console:, docs/console.md).
Its Decisions page reads --decisions-file, else config.yaml console.decisions.file, else (PostgreSQL
store) the decisions table servers and gateways write to, pruned past console.decisions.retention (30d).
stdout: one JSON audit line per state-changing request (never a token or key). SIGTERM drains and exits 0.`,
    )
    .action(async (o) => {
      const listen = parseListen(o.listen);
      if (!o.tlsCert || !o.tlsKey) {
        throw new MtlsError('USAGE', 'ca serve needs its TLS certificate and key: --tls-cert FILE --tls-key FILE', {
          hint: `issue one from this CA first: mcp-mtls issue server --dns <name clients use>${/^[\d.:]+$/.test(listen.host) ? ` --ip ${listen.host}` : ''} --out DIR`,
        });
      }
      const read = (f: string) => {
        try {
          return fs.readFileSync(f);
        } catch (cause) {
          throw new MtlsError('FILE_NOT_FOUND', `cannot read ${f}`, { cause, hint: 'issue one with `mcp-mtls issue server --dns NAME --out DIR`' });
        }
      };
      const cert = read(o.tlsCert);
      const key = read(o.tlsKey);
      const authority = openAuthority(o.dir, o);
      const log = (message: string) =>
        process.stderr.write(o.json ? `${JSON.stringify({ time: new Date().toISOString(), level: /^warning/.test(message) ? 'warn' : 'info', message })}\n` : `mcp-mtls ca serve: ${message}\n`);
      // the key is read (and its passphrase checked) now, not at the first request
      await authority.unlock();
      const leaf = readCertificates(cert)[0];
      if (!leaf || !new crypto.X509Certificate(leaf).verify(new crypto.X509Certificate(authority.intermediateDer).publicKey)) {
        log(`warning: ${o.tlsCert} was not issued by this CA's intermediate: clients that trust only this CA will not connect`);
      }
      const audit = (event: { event: string; [k: string]: unknown }) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
      const consoleHandler = createConsole({ authority, audit, log, ...(o.decisionsFile ? { decisionsFile: o.decisionsFile } : {}) });
      const server = createCaServer({
        authority,
        cert,
        key,
        audit,
        log,
        console: consoleHandler,
        renewRate: { burst: o.renewBurst, perMinute: o.renewPerMinute },
        crl: { checkMs: parseDuration(o.crlCheck, '--crl-check'), maxAgeMs: parseDuration(o.crlMaxAge, '--crl-max-age') },
      });
      const graceMs = parseDuration(o.grace, '--grace');
      await new Promise<void>((resolve, reject) => {
        server.once('error', (e: NodeJS.ErrnoException) =>
          reject(new MtlsError('IO_ERROR', `cannot listen on ${o.listen}: ${e.code ?? e.message}`, { cause: e, hint: e.code === 'EADDRINUSE' ? 'another process uses that port: pick another' : 'check the address' })),
        );
        server.listen(listen.port, listen.host, () => resolve());
      });
      const addr = server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      audit({ event: 'serve.start', url: `https://${host}:${addr.port}`, port: addr.port, store: authority.store.location, trustDomain: authority.config.trustDomain });
      log(`listening on https://${host}:${addr.port} (CA ${authority.config.trustDomain}, store ${authority.store.location})`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          process.off('SIGTERM', onTerm);
          process.off('SIGINT', onInt);
          log(`${signal}: draining (at most ${o.grace})`);
          void server
            .shutdown(graceMs)
            .then(() => {
              consoleHandler.stop();
              return authority.store.close();
            })
            .catch((e) => log(`warning: shutdown: ${(e as Error).message}`))
            .finally(() => {
              audit({ event: 'serve.stop', signal });
              resolve();
            });
        };
        const onTerm = () => stop('SIGTERM');
        const onInt = () => stop('SIGINT');
        process.on('SIGTERM', onTerm);
        process.on('SIGINT', onInt);
      });
      process.exitCode = 0;
    });
}
