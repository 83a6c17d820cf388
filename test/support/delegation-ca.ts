/**
 * A `ca serve` with delegation configured, for the POST /delegate tests: the CA (config.yaml's
 * `delegation:` block as the test gives it), the people and actors' certificates, the server on
 * 127.0.0.1, started in the file's before hook and shut down in its after hook. `grant` signs a
 * grant as one of them; `exchange` posts to /delegate and waits for the request's audit line.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { Authority } from '../../src/ca/authority.js';
import type { CaServerOptions } from '../../src/ca/serve/server.js';
import { signGrant } from '../../src/delegation/grant.js';
import { readCertificates } from '../../src/x509/pem.js';
import { clientCreds, makeCa, request, startServer, type Creds, type Reply, type TestCa } from './ca-serve.js';

type Holder = Parameters<typeof clientCreds>[1];

export interface DelegationCa {
  readonly t: TestCa;
  readonly ca: Authority;
  readonly port: number;
  readonly audit: Record<string, unknown>[];
  /** the certificates of `people`, by the names the test gave them */
  readonly who: Record<string, Creds>;
  /** a grant signed by `c` for `actor` (8 hours unless `ttlMs`) */
  grant(c: Creds, actor: string, o?: { teams?: string[]; roles?: string[]; ttlMs?: number; tools?: string[] }): Promise<string>;
  /** POST /delegate as `actor`, resolved once the server wrote the request's `ca.delegate` audit line (on the response's close) */
  exchange(actor: Creds, body: unknown): Promise<Reply>;
  /** POST /delegate as `actor`, without waiting for the audit */
  post(actor: Creds, body: unknown): Promise<Reply>;
  /** the CA's URL (https://localhost:PORT) */
  readonly url: string;
  /** `c` as a client bundle (createDelegatingAgent's, createMtlsAgent's): its chain, its key, this CA's root */
  bundleOf(c: Creds): { chain: Buffer[]; key: crypto.KeyObject; ca: Buffer[] };
}

export function useDelegationCa(o: { trustDomain: string; delegation: string; people: Record<string, Holder>; server?: Partial<CaServerOptions> }): DelegationCa {
  let t: TestCa | undefined;
  let port = 0;
  let audit: Record<string, unknown>[] = [];
  let close: (() => Promise<void>) | undefined;
  const who: Record<string, Creds> = {};
  const ready = (): TestCa => {
    if (!t) throw new Error('the delegation CA is not started yet (use it inside a test)');
    return t;
  };
  before(async () => {
    const made = makeCa(o.trustDomain);
    fs.appendFileSync(path.join(made.dir, 'config.yaml'), `delegation:\n${o.delegation}`);
    const ca = Authority.open(made.dir);
    t = { ...made, ca };
    for (const [name, holder] of Object.entries(o.people)) who[name] = await clientCreds(ca, holder);
    const s = await startServer(t, o.server);
    port = s.port;
    audit = s.audit;
    close = () => s.server.shutdown(1000);
  });
  after(async () => {
    await close?.();
    await t?.ca.store.close();
  });
  const post = (actor: Creds, body: unknown) =>
    request(port, ready().rootPem, { method: 'POST', path: '/delegate', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), creds: { cert: actor.cert, key: actor.key } });
  return {
    get t() {
      return ready();
    },
    get ca() {
      return ready().ca;
    },
    get port() {
      return port;
    },
    get audit() {
      return audit;
    },
    who,
    grant: (c, actor, g = {}) => signGrant({ chain: readCertificates(Buffer.from(c.cert)), key: crypto.createPrivateKey(c.key), actor, ...g, ttlMs: g.ttlMs ?? 8 * 3600_000 }),
    async exchange(actor, body) {
      const before = audit.filter((a) => a.event === 'ca.delegate').length;
      const r = await post(actor, body);
      for (let i = 0; i < 200 && audit.filter((a) => a.event === 'ca.delegate').length === before; i++) await new Promise((res) => setTimeout(res, 10));
      return r;
    },
    post,
    get url() {
      return `https://localhost:${port}`;
    },
    bundleOf: (c) => ({ chain: readCertificates(Buffer.from(c.cert)), key: crypto.createPrivateKey(c.key), ca: readCertificates(Buffer.from(ready().rootPem)) }),
  };
}
