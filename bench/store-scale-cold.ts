/**
 * bench/store-scale's "new process" figures: opens the CA (folder store, or PostgreSQL at argv[4])
 * in this fresh process and times its first `list --team` or `crl` (argv[2]), as a CLI run pays
 * it; prints {"ms": ...}. Node's and tsx's start-up are not counted: they do not grow with the store.
 */
import 'reflect-metadata';
import { Authority } from '../src/ca/authority.js';
import { listCertificates } from '../src/ca/list.js';
import { writeCrls } from '../src/ca/revocation.js';

const [what, dir, team, url] = process.argv.slice(2) as [string, string, string, string | undefined];
const store = url ? new (await import('../src/ca/store/postgres-store.js')).PostgresStore(url) : undefined;
const ca = Authority.open(dir, store ? { store } : {});
const t0 = performance.now();
const n = what === 'list' ? (await listCertificates(ca.store, { team }, new Date())).length : (await writeCrls(ca)).intermediate.state.entries;
const ms = performance.now() - t0;
await ca.store.close();
console.log(JSON.stringify({ ms, n, rssMb: Math.round(process.memoryUsage().rss / 1e6) }));
