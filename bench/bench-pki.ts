/**
 * The PKI the benchmarks that serve mTLS share: a fresh CA in DIR/pki, a server certificate for
 * localhost / 127.0.0.1 and one client certificate (user/bench, team bench), written as
 * DIR/server.crt, server.key and root.crt; the client's TLS context for connecting.
 */
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { Authority } from '../src/ca/authority.js';
import { initCa } from '../src/ca/init.js';
import type { IssuedCertificate } from '../src/ca/authority.js';
import { pemEncode } from '../src/x509/pem.js';

export async function benchPki(dir: string): Promise<{ ca: Authority; srv: IssuedCertificate; cli: IssuedCertificate; clientCtx: tls.SecureContext }> {
  initCa({ dir: path.join(dir, 'pki'), trustDomain: 'bench.test', rootTtlMs: 10 * 365 * 86_400_000, intermediateTtlMs: 5 * 365 * 86_400_000 });
  const ca = Authority.open(path.join(dir, 'pki'));
  const srv = await ca.issueServer({ dns: ['localhost'], ips: ['127.0.0.1'] });
  const cli = await ca.issueClient({ kind: 'user', id: 'bench', teams: ['bench'], roles: [] });
  fs.writeFileSync(path.join(dir, 'server.crt'), srv.chainPem);
  fs.writeFileSync(path.join(dir, 'server.key'), pemEncode('PRIVATE KEY', srv.key!.pkcs8));
  fs.writeFileSync(path.join(dir, 'root.crt'), ca.rootPem);
  const clientCtx = tls.createSecureContext({ cert: cli.chainPem, key: pemEncode('PRIVATE KEY', cli.key!.pkcs8), ca: ca.rootPem });
  return { ca, srv, cli, clientCtx };
}
