/**
 * Batch onboarding files for `issue client --batch`: CSV (header among
 * `type,id,teams,roles,email,ttl,notBefore,notAfter`, lists separated by `;`, `,` or spaces) or
 * YAML (a list of `{ user | service, teams, roles, email, ttl, notBefore, notAfter }`), as
 * `issue client --help` and docs/operations.md describe them. Every row is checked here, with
 * its line number, before anything is signed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import YAML, { isMap, isSeq, LineCounter } from 'yaml';
import { MtlsError } from '../errors.js';
import { assertPrincipalId, assertTeamOrRole, type PrincipalKind } from '../identity/names.js';
import type { ClientRequest } from './authority.js';
import { parseDuration, parseTimestamp } from '../util/duration.js';

export interface BatchRow extends ClientRequest {
  /** 1-based line in the file, for messages */
  readonly line: number;
}

function rowError(file: string, line: number, message: string, cause?: unknown): MtlsError {
  return new MtlsError('BAD_BATCH_FILE', `${path.basename(file)}:${line}: ${message}`, {
    cause,
    hint: 'fix that row and run the batch again; nothing was issued',
  });
}

const splitList = (v: unknown): string[] =>
  Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(/[;\s,]+/).filter(Boolean) : v == null ? [] : [String(v)];

function toRow(file: string, line: number, kind: string, id: unknown, fields: Record<string, unknown>): BatchRow {
  try {
    if (kind !== 'user' && kind !== 'service') throw new MtlsError('BAD_BATCH_FILE', `type must be "user" or "service", not "${kind}"`);
    if (typeof id !== 'string' && typeof id !== 'number') throw new MtlsError('BAD_BATCH_FILE', 'the id is missing');
    const teams = splitList(fields.teams).map((t) => assertTeamOrRole(t, 'team'));
    const roles = splitList(fields.roles).map((r) => assertTeamOrRole(r, 'role'));
    const email = fields.email == null || fields.email === '' ? undefined : String(fields.email);
    const ttl = fields.ttl == null || fields.ttl === '' ? undefined : parseDuration(String(fields.ttl), 'ttl');
    // YAML reads an unquoted timestamp as a Date
    const time = (v: unknown, what: string) => (v == null || v === '' ? undefined : v instanceof Date ? v : parseTimestamp(String(v), what));
    const notBefore = time(fields.notBefore, 'notBefore');
    const notAfter = time(fields.notAfter, 'notAfter');
    if (ttl !== undefined && notAfter !== undefined) throw new MtlsError('BAD_BATCH_FILE', 'give ttl or notAfter, not both');
    return {
      line,
      kind: kind as PrincipalKind,
      id: assertPrincipalId(String(id), kind as PrincipalKind),
      teams,
      roles,
      ...(email ? { email } : {}),
      ...(ttl ? { ttlMs: ttl } : {}),
      ...(notBefore ? { notBefore } : {}),
      ...(notAfter ? { notAfter } : {}),
    };
  } catch (e) {
    throw rowError(file, line, (e as Error).message, e);
  }
}

export function loadBatchFile(file: string): BatchRow[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (cause) {
    throw new MtlsError('FILE_NOT_FOUND', `cannot read batch file ${file}`, { cause, hint: 'check the path' });
  }
  const rows = /\.ya?ml$/i.test(file) ? parseYamlRows(file, text) : parseCsvRows(file, text);
  if (rows.length === 0) throw new MtlsError('BAD_BATCH_FILE', `${file} has no rows`, { hint: 'add one row per principal' });
  const seen = new Map<string, number>();
  for (const r of rows) {
    const key = `${r.kind}/${r.id}`;
    const first = seen.get(key);
    if (first !== undefined) throw rowError(file, r.line, `${key} appears twice (first on line ${first})`);
    seen.set(key, r.line);
  }
  return rows;
}

const CSV_COLUMNS = ['type', 'id', 'teams', 'roles', 'email', 'ttl', 'notBefore', 'notAfter'];

function parseCsvRows(file: string, text: string): BatchRow[] {
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    records = parseCsv(text, { columns: true, info: true, skip_empty_lines: true, trim: true, comment: '#' });
  } catch (e) {
    throw new MtlsError('BAD_BATCH_FILE', `${path.basename(file)}: not valid CSV: ${(e as Error).message}`, { hint: `the first line names the columns: ${CSV_COLUMNS.join(',')}` });
  }
  const header = Object.keys(records[0]?.record ?? {});
  const unknown = header.filter((h) => !CSV_COLUMNS.includes(h));
  if (unknown.length || !header.includes('type') || !header.includes('id')) {
    throw new MtlsError('BAD_BATCH_FILE', `${path.basename(file)}:1: columns must be among ${CSV_COLUMNS.join(',')} and include type,id (found ${header.join(',')})`, {
      hint: 'e.g. type,id,teams,roles\\nuser,alice,sre;platform,admin',
    });
  }
  return records.map(({ record, info }) => toRow(file, info.lines, record.type ?? '', record.id || undefined, record));
}

function parseYamlRows(file: string, text: string): BatchRow[] {
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter });
  if (doc.errors.length) throw new MtlsError('BAD_BATCH_FILE', `${path.basename(file)}: ${doc.errors[0]!.message}`, { hint: 'fix the YAML syntax' });
  const rootNode = doc.contents;
  if (!isSeq(rootNode)) throw new MtlsError('BAD_BATCH_FILE', `${path.basename(file)}: expected a list of principals`, { hint: '- user: alice\\n  teams: [sre]' });
  return rootNode.items.map((item) => {
    const line = lineCounter.linePos(item.range?.[0] ?? 0).line;
    if (!isMap(item)) throw rowError(file, line, 'each entry must be a map such as { user: alice, teams: [sre] }');
    const obj = item.toJSON() as Record<string, unknown>;
    const allowed = ['user', 'service', 'teams', 'roles', 'email', 'ttl', 'notBefore', 'notAfter'];
    const extra = Object.keys(obj).filter((k) => !allowed.includes(k));
    if (extra.length) throw rowError(file, line, `unknown field "${extra[0]}" (allowed: ${allowed.join(', ')})`);
    if ((obj.user === undefined) === (obj.service === undefined)) throw rowError(file, line, 'give exactly one of user or service');
    const kind = obj.user !== undefined ? 'user' : 'service';
    return toRow(file, line, kind, obj[kind], obj);
  });
}
