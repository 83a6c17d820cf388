/**
 * Writing an issued certificate where the user asked: OUTDIR/<id>.crt (leaf then
 * intermediate), OUTDIR/<id>.key (PKCS#8, 0600, only when the CA made the key) and
 * OUTDIR/ca.crt (the root). Checked before anything is signed, so that a refusal leaves
 * nothing behind; existing files are never overwritten.
 */
import fs from 'node:fs';
import path from 'node:path';
import { MtlsError } from '../errors.js';
import { privateKeyPem } from '../x509/keys.js';
import type { Delivery, IssuedCertificate } from './authority.js';
import { MODES } from './layout.js';
import { pathTaken, stageFiles, type FileToWrite } from '../util/atomic-file.js';
import { sha256Hex } from '../util/sha256.js';

export interface OutputFiles {
  readonly cert: string;
  readonly key?: string;
  readonly ca: string;
}

/** A file-name-safe base name for a certificate: the principal id, or a server's first name. */
export function outputBaseName(id: string): string {
  const safe = id.replace(/^\*\./, 'wildcard.').replace(/[^A-Za-z0-9._-]/g, '_');
  // a DNS name may have 253 characters; a file name 255 bytes: keep room for ".crt" and friends
  return safe.length <= 120 ? safe : `${safe.slice(0, 111)}-${sha256Hex(id).slice(0, 8)}`;
}

export function plannedOutput(outDir: string, baseName: string, withKey: boolean): OutputFiles {
  const dir = path.resolve(outDir);
  return {
    cert: path.join(dir, `${baseName}.crt`),
    ...(withKey ? { key: path.join(dir, `${baseName}.key`) } : {}),
    ca: path.join(dir, 'ca.crt'),
  };
}

/** Refuses, before signing, outputs that exist or a folder that cannot be created. */
export function checkOutput(files: OutputFiles, rootPem: string, replace = false): void {
  for (const f of [files.cert, files.key]) {
    if (f && (replace ? pathTaken(f) && !fs.lstatSync(f).isFile() : pathTaken(f))) {
      throw new MtlsError('OUTPUT_EXISTS', `${f} exists already`, { hint: 'move it away or choose another --out; mcp-mtls never overwrites a certificate or key' });
    }
  }
  if (pathTaken(files.ca) && (!fs.statSync(files.ca, { throwIfNoEntry: false })?.isFile() || fs.readFileSync(files.ca, 'utf8') !== rootPem)) {
    throw new MtlsError('OUTPUT_EXISTS', `${files.ca} holds another CA's root`, { hint: 'choose another --out for certificates of this CA' });
  }
  // the folder is created only when there is something to write: find the nearest existing ancestor
  let dir = path.dirname(files.cert);
  while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  try {
    if (!fs.statSync(dir).isDirectory()) throw new Error('not a folder');
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (cause) {
    throw new MtlsError('IO_ERROR', `cannot write to ${dir}`, { cause, hint: 'check that the --out folder is writable' });
  }
}

/**
 * Delivery of issued certificates into --out, completed inside the CA's transaction:
 * checked again and staged under the store lock before the commit (so a conflict refuses
 * the issuance with nothing recorded), linked into place right after it.
 */
export function outputDelivery(plans: readonly OutputFiles[], rootPem: string, replace = false): Delivery {
  return {
    stage(issued) {
      for (const f of plans) checkOutput(f, rootPem, replace);
      return stageFiles(outputWrites(issued.map((c, i) => ({ files: plans[i] as OutputFiles, issued: c })), rootPem, replace));
    },
  };
}

function outputWrites(items: readonly { files: OutputFiles; issued: IssuedCertificate }[], rootPem: string, replace: boolean): FileToWrite[] {
  const writes: FileToWrite[] = [];
  const cas = new Set<string>();
  for (const { files, issued } of items) {
    fs.mkdirSync(path.dirname(files.cert), { recursive: true, mode: MODES.privateDir });
    if (files.key && issued.key) writes.push({ file: files.key, data: privateKeyPem(issued.key.pkcs8), mode: MODES.privateKey, exclusive: !replace });
    writes.push({ file: files.cert, data: issued.chainPem, mode: MODES.cert, exclusive: !replace });
    if (!cas.has(files.ca) && !pathTaken(files.ca)) writes.push({ file: files.ca, data: rootPem, mode: MODES.cert });
    cas.add(files.ca);
  }
  return writes;
}
