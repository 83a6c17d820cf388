/**
 * Which store a CA uses: the CA folder itself (default), or a PostgreSQL database named by
 * a postgres:// URL (from --store, MCP_MTLS_STORE or config.yaml's `store:`). The keys and
 * config.yaml always stay in the CA folder.
 */
import { MtlsError } from '../../errors.js';
import { FsStore } from './fs-store.js';
import { assertNoPassword, PostgresStore } from './postgres-store.js';
import type { Store } from './store.js';

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** where the spec came from, for messages (e.g. "--store") */
  readonly where?: string;
  readonly password?: () => Promise<string | undefined>;
  /** the CA's root fingerprint: a database store records it and refuses another CA's database */
  readonly caFingerprint?: string;
}

export function isDatabaseUrl(spec: string | undefined): boolean {
  return spec !== undefined && /^postgres(ql)?:\/\//i.test(spec);
}

/**
 * The store a CA uses, from a spec as the CLI takes it: undefined, `''` or `folder` for the CA
 * folder itself, or a `postgres://` URL (without a password).
 *
 * @param dir - the CA folder (holds the folder store, and the keys in every case)
 * @throws MtlsError `USAGE` for an unknown spec or a URL with a password
 */
export function openStore(spec: string | undefined, dir: string, options: OpenStoreOptions = {}): Store {
  if (spec === undefined || spec === '' || spec === 'folder') return new FsStore(dir);
  if (isDatabaseUrl(spec)) {
    assertNoPassword(spec, options.where ?? 'store');
    return new PostgresStore(spec, { ...(options.password ? { password: options.password } : {}), ...(options.caFingerprint ? { caFingerprint: options.caFingerprint } : {}) });
  }
  throw new MtlsError('USAGE', `${options.where ?? 'store'}: unknown store "${spec.replace(/\/\/[^@/]*@/, '//…@')}"`, {
    hint: 'use postgres://USER@HOST:PORT/DATABASE, or "folder" (the default: the CA folder itself)',
  });
}
