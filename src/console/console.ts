/**
 * The operator console, mounted by `ca serve` under /console on its own TLS listener
 * (docs/console.md). Every request is authenticated by the operator's client certificate and
 * config.yaml's `console.view` / `console.act` (access.ts); every POST passes the CSRF guard
 * (csrf.ts); every action is audited with the operator's principal. The page is static files
 * built by `npm run build` (console/ -> dist/console/web/), served with a strict
 * Content-Security-Policy; everything else is the JSON API under /console/api (api.ts).
 */
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Authority } from '../ca/authority.js';
import { HttpError, sendError } from '../ca/serve/http.js';
import { createOperatorCheck } from './access.js';
import { createConsoleApi } from './api.js';
import { createCsrfGuard } from './csrf.js';
import { createPolicyRunner } from './policy-pool.js';
import { fileDecisionSource, type DecisionSource } from './decisions.js';
import { postgresDecisionSource, pruneDecisions } from './decisions-postgres.js';
import { PostgresStore } from '../ca/store/postgres-store.js';
import { parseDuration } from '../util/duration.js';

/** Receives one event per console action (and refused action): `console.*`, with `operator`. */
export type ConsoleAudit = (event: { event: string; [k: string]: unknown }) => void;

export interface ConsoleOptions {
  readonly authority: Authority;
  readonly audit?: ConsoleAudit;
  readonly log?: (message: string) => void;
  /** the built front end (index.html, app.js, app.css); default: web/ beside this module (dist/console/web) */
  readonly assetsDir?: string;
  /** the policy pages' share of the event loop, ms of work per minute (work-budget.ts); default 6,000 */
  readonly policyWorkMsPerMinute?: number;
  /** the decisions file, overriding config.yaml's `console.decisions.file` (`ca serve --decisions-file`); relative to the working directory */
  readonly decisionsFile?: string;
  /** how often `ca serve` prunes the decisions table past its retention (default 1 h; the first run a minute after start) */
  readonly pruneEveryMs?: number;
  /** run the policy pages' work on the CA's own thread instead of a worker thread (default false: a worker, policy-pool.ts) */
  readonly policyInline?: boolean;
}

/** How long the decisions table keeps a row when config.yaml names no retention. */
export const DEFAULT_DECISIONS_RETENTION = '30d';

/** Handles one request whose path is /console or below it; `stop` ends its timers (the decisions pruning) and its policy worker. */
export type ConsoleHandler = ((req: IncomingMessage, res: ServerResponse) => Promise<void>) & { stop(): void; readonly decisions?: DecisionSource };

/**
 * Where the Decisions page reads: `--decisions-file`, else config.yaml's file (relative to the
 * CA folder), else the PostgreSQL store's table, else nowhere.
 */
export function decisionSourceOf(ca: Authority, file?: string): DecisionSource | undefined {
  const configured = ca.config.console?.decisions?.file;
  if (file) return fileDecisionSource(path.resolve(file));
  if (configured) return fileDecisionSource(path.resolve(ca.layout.dir, configured));
  const store = ca.store;
  if (store instanceof PostgresStore) return postgresDecisionSource(() => store.decisionsPool());
  return undefined;
}

/** No inline script or style, nothing from elsewhere, no framing, no form posts, no plugins. */
export const CONSOLE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const ASSETS: Record<string, { file: string; type: string }> = {
  '/console/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/console/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A refusal as a page (for the browser's address bar), the same code and words as the JSON answer. */
function sendErrorPage(res: ServerResponse, e: HttpError): void {
  const body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mcp-mtls console: ${escapeHtml(e.code)}</title></head><body><h1>${e.status} ${escapeHtml(e.code)}</h1><p id="message">${escapeHtml(e.message)}</p>${e.hint ? `<p id="hint">${escapeHtml(e.hint)}</p>` : ''}</body></html>`;
  res.writeHead(e.status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...SECURITY_HEADERS, ...e.headers });
  res.end(body);
}

export function createConsole(options: ConsoleOptions): ConsoleHandler {
  const ca = options.authority;
  const audit = options.audit ?? (() => undefined);
  const assetsDir = options.assetsDir ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'web');
  const operatorOf = createOperatorCheck(ca);
  // every replica derives the same key from the CA key they all hold: a page loaded from one is
  // accepted by the others behind a load balancer (csrf.ts)
  const csrf = createCsrfGuard(() => ca.deriveKey('mcp-mtls console csrf v1'));
  const decisions = decisionSourceOf(ca, options.decisionsFile);
  const policyRunner = createPolicyRunner({ inline: options.policyInline === true });
  const api = createConsoleApi({ authority: ca, audit, csrf, policy: policyRunner, ...(decisions ? { decisions } : {}), ...(options.policyWorkMsPerMinute !== undefined ? { policyWorkMsPerMinute: options.policyWorkMsPerMinute } : {}) });
  const store = ca.store;
  let pruner: NodeJS.Timeout | undefined;
  if (decisions?.kind === 'postgres' && store instanceof PostgresStore) {
    const retentionMs = parseDuration(ca.config.console?.decisions?.retention ?? DEFAULT_DECISIONS_RETENTION, 'console.decisions.retention');
    const prune = () =>
      void store
        .decisionsPool()
        .then((pool) => pruneDecisions(pool, new Date(ca.now().getTime() - retentionMs)))
        .then((n) => n > 0 && options.log?.(`decisions: deleted ${n} row(s) older than ${ca.config.console?.decisions?.retention ?? DEFAULT_DECISIONS_RETENTION}`))
        .catch((e) => options.log?.(`warning: decisions: pruning failed: ${(e as Error)?.message ?? e}`));
    const every = options.pruneEveryMs ?? 3_600_000;
    pruner = setTimeout(function again() {
      prune();
      pruner = setTimeout(again, every).unref();
    }, Math.min(every, 60_000)).unref();
  }
  const cache = new Map<string, Buffer>();
  const asset = (file: string): Buffer => {
    let b = cache.get(file);
    if (!b) {
      try {
        b = fs.readFileSync(path.join(assetsDir, file));
      } catch {
        throw new HttpError(503, 'CONSOLE_NOT_BUILT', `the console's front end is not in ${assetsDir}`, 'build the package (npm run build) or reinstall it');
      }
      cache.set(file, b);
    }
    return b;
  };

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://console.invalid');
    const p = url.pathname;
    const isApi = p.startsWith('/console/api/');
    try {
      if (p === '/console') {
        res.writeHead(308, { location: '/console/', 'cache-control': 'no-store', ...SECURITY_HEADERS });
        res.end();
        return;
      }
      let operator;
      try {
        operator = await operatorOf(req);
      } catch (e) {
        if (e instanceof HttpError && req.method === 'POST') audit({ event: 'console.refused', path: p, status: e.status, code: e.code, ...e.audit, remote: req.socket.remoteAddress });
        throw e;
      }
      if (isApi) {
        // on every answer, not only refusals: another origin may not read (CORP), sniff or frame it
        for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
        return await api(req, res, url, operator);
      }
      const a = ASSETS[p];
      if (!a) throw new HttpError(404, 'NOT_FOUND', `no such console page: ${p.slice(0, 200)}`, 'open /console/');
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method} ${p} is not allowed`, 'use GET', { allow: 'GET, HEAD' });
      const body = asset(a.file);
      res.writeHead(200, { 'content-type': a.type, 'content-length': body.length, 'cache-control': 'no-store', ...SECURITY_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, 'INTERNAL', 'internal error');
      if (!(e instanceof HttpError)) options.log?.(`console ${req.method} ${p} failed: ${(e as Error)?.stack ?? String(e)}`);
      req.resume();
      if (isApi) {
        if (!res.headersSent) for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
        sendError(res, err);
      } else sendErrorPage(res, err);
    }
  };
  return Object.assign(handler, {
    stop: () => {
      if (pruner) clearTimeout(pruner);
      pruner = undefined;
      void policyRunner.close();
    },
    ...(decisions ? { decisions } : {}),
  });
}
