/**
 * The console's JSON API under /console/api (docs/console.md). GETs read; POSTs pass the CSRF
 * guard first; revoke and token creation also need `console.act`, and are audited with the
 * operator's principal (the audit writer of `ca serve` and, through the library calls, the
 * store's audit log). Every answer is `Cache-Control: no-store`. A token's secret is in the
 * answer to its creation only: the store keeps its hash, and no other answer carries it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { isMtlsError } from '../errors.js';
import type { Authority } from '../ca/authority.js';
import { verifyChain, inspectCertificate } from '../ca/inspect.js';
import { foldIndex, type CertificateEntry } from '../ca/list.js';
import { crlStatus, revokeCertificate } from '../ca/revocation.js';
import { HttpError, readBody, sendJson } from '../ca/serve/http.js';
import { successorIn } from '../ca/store/store.js';
import { createEnrollmentToken, listTokens } from '../ca/tokens.js';
import { parseDuration } from '../util/duration.js';
import { formatName } from '../x509/certificate.js';
import { requireAct, type Operator } from './access.js';
import type { ConsoleAudit } from './console.js';
import type { CsrfGuard } from './csrf.js';
import { createWorkBudget } from './work-budget.js';
import { queryDecisions, type DecisionLine, type DecisionQuery, type DecisionSource } from './decisions.js';
import { knownSubjects } from './policy-matrix.js';
import type { PolicyRunner } from './policy-pool.js';

/** A valid certificate ending within this is "expiring" (overview, filters). */
export const EXPIRING_MS = 7 * 86_400_000;

/** The revocation reasons an operator may choose (cACompromise is the root's business). */
const REASONS = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation'] as const;
const SERIAL_RE = /^[0-9a-f]{1,64}$/;
export { MAX_MATRIX_TOOLS } from './policy-tasks.js';

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL, op: Operator, m: RegExpExecArray) => Promise<void>;

export function createConsoleApi(deps: { authority: Authority; audit: ConsoleAudit; csrf: CsrfGuard; policyWorkMsPerMinute?: number; decisions?: DecisionSource; policy: PolicyRunner }) {
  const runner = deps.policy;
  const ca = deps.authority;
  const policyWork = createWorkBudget(deps.policyWorkMsPerMinute);
  const cfg = ca.config.console ?? {};
  const resolve = (p: string) => path.resolve(ca.layout.dir, p);
  const policyFile = cfg.policy ? resolve(cfg.policy) : undefined;

  const entries = async (): Promise<(CertificateEntry & { expiring: boolean })[]> => {
    const now = ca.now();
    return foldIndex(await ca.store.readIndex(), now).map((e) => ({ ...e, expiring: e.status === 'valid' && Date.parse(e.notAfter) - now.getTime() <= EXPIRING_MS }));
  };
  const source = deps.decisions;
  const decisions = async <T>(read: (s: DecisionSource) => Promise<T>, none: T): Promise<T> => {
    if (!source) return none;
    try {
      return await read(source);
    } catch (e) {
      if (source.kind === 'postgres') throw new HttpError(503, 'DECISIONS_UNREADABLE', `cannot read the decisions table: ${isMtlsError(e) ? e.message : String((e as Error)?.message ?? e).slice(0, 200)}`, 'check the PostgreSQL store (mcp-mtls ca migrate brings it to schema 5)', { 'retry-after': '5' });
      throw new HttpError(503, 'DECISIONS_UNREADABLE', (e as Error).message, 'point console.decisions.file in config.yaml (or ca serve --decisions-file) at the JSON-lines audit file the servers append to');
    }
  };
  const readJson = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    const body = await readBody(req);
    try {
      const v = JSON.parse(body.toString('utf8'));
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      /* answered below */
    }
    throw new HttpError(400, 'BAD_JSON', 'the request body is not a JSON object');
  };
  const strings = (v: unknown, what: string): string[] => {
    if (v === undefined || v === null || v === '') return [];
    const list = Array.isArray(v) ? v : String(v).split(',');
    if (!list.every((x) => typeof x === 'string')) throw new HttpError(400, 'BAD_ARGUMENT', `${what} must be a list of names`);
    return (list as string[]).map((s) => s.trim()).filter(Boolean);
  };
  const asHttp = (e: unknown): unknown => {
    if (!isMtlsError(e)) return e;
    if (e.code === 'NOT_FOUND') return new HttpError(404, e.code, e.message, e.hint);
    if (e.code === 'ALREADY_REVOKED') return new HttpError(409, e.code, e.message, e.hint);
    if (e.code === 'LIMIT_EXCEEDED' || e.code === 'PROFILE_VIOLATION' || e.code === 'TTL_EXCEEDS_ISSUER') return new HttpError(403, e.code, e.message, e.hint);
    if (e.kind === 'io' || e.code.startsWith('STORE_') || e.code.startsWith('CA_KEY')) return e;
    return new HttpError(400, e.code, e.message, e.hint);
  };

  const overview: Handler = async (_req, res) => {
    const now = ca.now();
    const all = await entries();
    const count = (f: (e: (typeof all)[number]) => boolean) => all.filter(f).length;
    const caCert = (c: typeof ca.root) => ({ subject: formatName(c.subjectName), serial: c.serial, notAfter: c.notAfter.toISOString(), remainingMs: c.notAfter.getTime() - now.getTime() });
    const refusals = await decisions((s) => s.recentRefusals(10), [] as DecisionLine[]);
    sendJson(res, 200, {
      trustDomain: ca.config.trustDomain,
      now: now.toISOString(),
      ca: { root: caCert(ca.root), intermediate: caCert(ca.intermediate) },
      crls: await crlStatus(ca),
      counts: { valid: count((e) => e.status === 'valid'), expiring: count((e) => e.expiring), expired: count((e) => e.status === 'expired'), revoked: count((e) => e.status === 'revoked') },
      expiringWithinMs: EXPIRING_MS,
      recentRefusals: refusals,
      decisionsSource: source?.kind ?? null,
    });
  };

  const certificates: Handler = async (_req, res, url) => {
    const q = url.searchParams;
    const text = (q.get('q') ?? '').toLowerCase();
    const status = q.get('status') ?? '';
    const list = (await entries()).filter(
      (e) =>
        (!text || (e.principal ?? e.id).toLowerCase().includes(text) || e.serial.includes(text)) &&
        (!q.get('team') || e.teams.includes(q.get('team') as string)) &&
        (!q.get('role') || e.roles.includes(q.get('role') as string)) &&
        (!q.get('type') || e.type === q.get('type')) &&
        (!status || (status === 'expiring' ? e.expiring : e.status === status)),
    );
    sendJson(res, 200, { certificates: list.reverse(), now: ca.now().toISOString() });
  };

  const certificate: Handler = async (_req, res, _url, _op, m) => {
    const serial = m[1] as string;
    const index = await ca.store.readIndex();
    const entry = (await entries()).find((e) => e.serial === serial);
    const der = await ca.store.readIssued(serial);
    if (!entry || !der) throw new HttpError(404, 'NOT_FOUND', `no certificate with serial ${serial} in this CA's records`, 'search the certificates page');
    const report = inspectCertificate(der, { root: ca.rootDer, intermediate: ca.intermediateDer, now: ca.now() });
    const history: { serial: string; notBefore: string; notAfter: string; relation: string }[] = [];
    const bySerial = new Map(index.filter((r) => r.op === 'issue').map((r) => [r.serial, r]));
    for (let r = entry.renewedFrom ? bySerial.get(entry.renewedFrom) : undefined, n = 0; r && r.op === 'issue' && n < 1000; r = r.renewedFrom ? bySerial.get(r.renewedFrom) : undefined, n++) history.unshift({ serial: r.serial, notBefore: r.notBefore, notAfter: r.notAfter, relation: 'renewed into the next' });
    history.push({ serial, notBefore: entry.notBefore, notAfter: entry.notAfter, relation: 'this certificate' });
    for (let s = successorIn(index, serial), n = 0; s && n < 1000; s = successorIn(index, s.serial), n++) history.push({ serial: s.serial, notBefore: s.notBefore, notAfter: s.notAfter, relation: 'renewal' });
    const chain = [
      { role: 'certificate', subject: report.subject, serial, notAfter: report.notAfter },
      { role: 'intermediate', subject: formatName(ca.intermediate.subjectName), serial: ca.intermediate.serial, notAfter: ca.intermediate.notAfter.toISOString() },
      { role: 'root', subject: formatName(ca.root.subjectName), serial: ca.root.serial, notAfter: ca.root.notAfter.toISOString() },
    ];
    sendJson(res, 200, { certificate: entry, inspect: report, chain, chainCheck: verifyChain(der, { root: ca.rootDer, intermediate: ca.intermediateDer, now: ca.now() }), history, reasons: REASONS });
  };

  const revoke: Handler = async (req, res, _url, op, m) => {
    requireAct(op);
    const serial = m[1] as string;
    const body = await readJson(req);
    const reason = body.reason;
    if (typeof reason !== 'string' || !(REASONS as readonly string[]).includes(reason)) throw new HttpError(400, 'BAD_REASON', `unknown revocation reason ${JSON.stringify(String(reason)).slice(0, 60)}`, `use one of: ${REASONS.join(', ')}`);
    if (body.confirm !== serial) throw new HttpError(400, 'NOT_CONFIRMED', 'a revocation needs the serial repeated in "confirm"', 'type the serial to confirm');
    const note = { event: 'console.revoke', operator: op.identity.principal, serial, reason };
    try {
      const r = await revokeCertificate(ca, serial, reason as (typeof REASONS)[number], op.identity.principal);
      deps.audit({ ...note, status: 200, principal: r.issued.principal ?? r.issued.id, alsoRevoked: r.alsoRevoked, crlNumber: r.crlNumber });
      sendJson(res, 200, { revoked: r.record, alsoRevoked: r.alsoRevoked, crlNumber: r.crlNumber });
    } catch (e) {
      const h = asHttp(e);
      deps.audit({ ...note, status: h instanceof HttpError ? h.status : 500, code: h instanceof HttpError ? h.code : 'INTERNAL' });
      throw h;
    }
  };

  const tokens: Handler = async (_req, res) => {
    sendJson(res, 200, { tokens: (await listTokens(ca)).reverse() });
  };

  const createToken: Handler = async (req, res, _url, op) => {
    requireAct(op);
    const b = await readJson(req);
    const kind = b.kind === 'service' ? 'service' : 'user';
    const id = typeof b.id === 'string' ? b.id.trim() : '';
    if (!id) throw new HttpError(400, 'BAD_ARGUMENT', 'name the user or service the token enrolls', 'fill in the id');
    const ttl = typeof b.ttl === 'string' && b.ttl ? b.ttl : '15m';
    const note = { event: 'console.token.create', operator: op.identity.principal, kind, id };
    try {
      const created = await createEnrollmentToken(ca, {
        kind,
        id,
        teams: strings(b.teams, 'teams'),
        roles: strings(b.roles, 'roles'),
        ...(typeof b.email === 'string' && b.email ? { email: b.email } : {}),
        ttlMs: parseDuration(ttl, 'ttl'),
        ...(typeof b.certTtl === 'string' && b.certTtl ? { certTtl: b.certTtl } : {}),
        createdBy: op.identity.principal,
      });
      const { hash: _hash, ...token } = created.token;
      deps.audit({ ...note, status: 200, tokenId: token.id, expiresAt: token.expiresAt });
      sendJson(res, 200, { secret: created.secret, token });
    } catch (e) {
      const h = asHttp(e);
      deps.audit({ ...note, status: h instanceof HttpError ? h.status : 500, code: h instanceof HttpError ? h.code : 'INTERNAL' });
      throw h;
    }
  };

  const decisionsQuery: Handler = async (_req, res, url) => {
    const q = url.searchParams;
    const since = q.get('since');
    const sinceMs = since ? (/^\d+[smhdw]$/.test(since) ? ca.now().getTime() - parseDuration(since, 'since') : Date.parse(since)) : undefined;
    if (sinceMs !== undefined && Number.isNaN(sinceMs)) throw new HttpError(400, 'BAD_ARGUMENT', 'since is a duration (24h) or an ISO time');
    const outcome = q.get('outcome');
    const query: DecisionQuery = {
      ...(q.get('principal') ? { principal: q.get('principal') as string } : {}),
      ...(q.get('tool') ? { tool: q.get('tool') as string } : {}),
      ...(q.get('rule') ? { rule: q.get('rule') as string } : {}),
      ...(outcome === 'allow' || outcome === 'deny' ? { outcome } : {}),
      ...(sinceMs !== undefined ? { sinceMs } : {}),
    };
    const now = ca.now();
    const result = await decisions((s) => s.query(query, now), queryDecisions([], query, now));
    sendJson(res, 200, { source: source?.kind ?? null, ...result });
  };

  const subjects = async () => knownSubjects(await entries(), ca.config.trustDomain);
  // the work itself (compiling, principals x tools decisions, the JSON answer) runs on the
  // policy worker thread, not on the CA's event loop (policy-pool.ts); the CA thread reads the
  // inventory and writes the answer out
  const configuredFile = (): string => {
    if (!policyFile) throw new HttpError(404, 'POLICY_NOT_CONFIGURED', 'the console has no policy to show', 'name the policy file the servers run under console.policy in config.yaml');
    return policyFile;
  };
  const sendText = (res: ServerResponse, json: string) => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(json) });
    res.end(json);
  };

  const matrix: Handler = async (_req, res, url) => {
    const file = configuredFile();
    sendText(res, await policyWork.elsewhere(runner.run({ op: 'matrix', file, subjects: await subjects(), tools: [...(cfg.tools ?? []), ...strings(url.searchParams.get('tools'), 'tools')] })));
  };

  const explain: Handler = async (req, res) => {
    const b = await readJson(req);
    const file = configuredFile();
    if (b.policy !== undefined && typeof b.policy !== 'string') throw new HttpError(400, 'BAD_ARGUMENT', 'policy is YAML text');
    const s = (await subjects()).find((x) => x.principal === b.principal);
    if (!s) throw new HttpError(404, 'NOT_FOUND', 'no valid client certificate of that principal', 'pick a principal of the matrix');
    if (typeof b.tool !== 'string' || !b.tool) throw new HttpError(400, 'BAD_ARGUMENT', 'name a tool');
    sendText(res, await policyWork.elsewhere(runner.run({ op: 'explain', file, ...(typeof b.policy === 'string' ? { text: b.policy } : {}), subject: s, tool: b.tool, args: b.args ?? {} })));
  };

  const playground: Handler = async (req, res) => {
    const b = await readJson(req);
    if (typeof b.policy !== 'string') throw new HttpError(400, 'BAD_ARGUMENT', 'send the changed policy as "policy" (YAML text)');
    const file = configuredFile();
    sendText(res, await policyWork.elsewhere(runner.run({ op: 'playground', file, text: b.policy, subjects: await subjects(), tools: [...(cfg.tools ?? []), ...strings(b.tools, 'tools')] })));
  };

  const session: Handler = async (_req, res, _url, op) => {
    sendJson(res, 200, { principal: op.identity.principal, mayAct: op.mayAct, csrf: await deps.csrf.tokenFor(op.identity.fingerprint), trustDomain: ca.config.trustDomain });
  };

  // the policy endpoints' work grows with what the operator sends: their sum is bounded (work-budget.ts)
  const budgeted = (run: Handler): Handler => (req, res, url, op, m) => policyWork.run(() => run(req, res, url, op, m));

  const routes: { method: string; re: RegExp; run: Handler; changes?: boolean }[] = [
    { method: 'GET', re: /^\/console\/api\/session$/, run: session },
    { method: 'GET', re: /^\/console\/api\/overview$/, run: overview },
    { method: 'GET', re: /^\/console\/api\/certificates$/, run: certificates },
    { method: 'GET', re: /^\/console\/api\/certificates\/([^/]+)$/, run: certificate },
    { method: 'POST', re: /^\/console\/api\/certificates\/([^/]+)\/revoke$/, run: revoke },
    { method: 'GET', re: /^\/console\/api\/tokens$/, run: tokens },
    { method: 'POST', re: /^\/console\/api\/tokens$/, run: createToken },
    { method: 'GET', re: /^\/console\/api\/decisions$/, run: decisionsQuery },
    { method: 'GET', re: /^\/console\/api\/policy\/matrix$/, run: budgeted(matrix) },
    { method: 'POST', re: /^\/console\/api\/policy\/explain$/, run: budgeted(explain) },
    { method: 'POST', re: /^\/console\/api\/policy\/playground$/, run: budgeted(playground) },
  ];

  return async (req: IncomingMessage, res: ServerResponse, url: URL, op: Operator): Promise<void> => {
    const matching = routes.filter((r) => r.re.test(url.pathname));
    if (matching.length === 0) throw new HttpError(404, 'NOT_FOUND', `no such console endpoint: ${url.pathname.slice(0, 200)}`);
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const route = matching.find((r) => r.method === method);
    if (!route) throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} ${url.pathname.slice(0, 200)} is not allowed`, `use ${matching.map((r) => r.method).join(' or ')}`, { allow: matching.map((r) => r.method).join(', ') });
    const m = route.re.exec(url.pathname) as RegExpExecArray;
    if (m[1] !== undefined && !SERIAL_RE.test(m[1])) throw new HttpError(400, 'BAD_SERIAL', 'a serial is lowercase hex');
    if (route.method === 'POST') {
      try {
        await deps.csrf.check(req, op.identity.fingerprint);
      } catch (e) {
        deps.audit({ event: 'console.refused', operator: op.identity.principal, path: url.pathname.slice(0, 200), status: 403, code: 'CSRF_REFUSED', remote: req.socket.remoteAddress });
        throw e;
      }
    }
    await route.run(req, res, url, op, m);
  };
}
