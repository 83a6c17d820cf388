/**
 * Where everything lives in a CA folder (the fs store). One place, so the CLI, the store
 * and the docs agree. Modes follow the architecture doc.
 */
import path from 'node:path';

export const MODES = {
  caKey: 0o400,
  privateKey: 0o600,
  privateDir: 0o700,
  cert: 0o644,
  /** index and audit: no secrets, but who holds which certificate is nobody else's business */
  record: 0o600,
} as const;

export function caLayout(dir: string) {
  const root = path.resolve(dir);
  return {
    dir: root,
    config: path.join(root, 'config.yaml'),
    rootCert: path.join(root, 'root.crt'),
    intermediateCert: path.join(root, 'intermediate.crt'),
    privateDir: path.join(root, 'private'),
    rootKey: path.join(root, 'private', 'root.key'),
    intermediateKey: path.join(root, 'private', 'intermediate.key'),
    issuedDir: path.join(root, 'issued'),
    issuedCert: (serial: string) => path.join(root, 'issued', `${serial}.crt`),
    index: path.join(root, 'index.jsonl'),
    audit: path.join(root, 'audit.log'),
    crlDir: path.join(root, 'crl'),
    crl: (which: 'root' | 'intermediate') => path.join(root, 'crl', `${which}.crl`),
    lock: path.join(root, 'store'),
    /** the issuance in progress: lets the next transaction finish or undo one a crash cut short */
    pending: path.join(root, 'pending.json'),
    /** serials whose records `tidy` removed: never used again (one JSON string a line) */
    retired: path.join(root, 'retired.jsonl'),
  };
}

export type CaLayout = ReturnType<typeof caLayout>;
