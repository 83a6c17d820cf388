/**
 * A stdio MCP server as a Streamable HTTP upstream of the gateway. The gateway's proxy
 * (proxy.ts) talks to it as to any HTTP upstream, so everything it does (policy per message,
 * hidden-as-unknown, list filtering, identity in `_meta`, audit, metrics, sessions bound to
 * certificates) applies unchanged: this file only turns HTTP into stdio processes.
 *
 * It listens on a Unix socket in a private folder (mode 0700), reachable by the gateway's own
 * user only, never on a network port: what it receives comes from the gateway, so the identity
 * in `_meta` of an `initialize` is the verified one.
 *
 * Processes (`processModel`): `shared` (one for every caller), `per-principal` or `per-team`
 * (one per principal or team, started on its first request, stopped after `idleMs` unused, at
 * most `maxProcesses`, the least recently used idle one stopped first). A process is
 * initialized once, by the first session of its key (a shared or per-team one without that
 * session's identity in `_meta`: it serves several); later sessions get that answer.
 *
 * Matching: every request id is rewritten to one of the process's own, so a response goes
 * only to the caller that asked; progress tokens likewise. A server-to-client request
 * (sampling, elicitation, roots) goes to the caller with a request in flight when every
 * request in flight belongs to one principal, and its answer comes back; otherwise the process
 * gets an error answer (the gateway cannot tell whose it is). A notification that names no
 * request: list_changed to every session of the process, resources/updated to the sessions
 * that subscribed, log messages by the sessions' own levels (stdio-notify.ts), any other only
 * when the process serves one principal.
 *
 * Faults: a process that exits fails its requests in flight with a JSON-RPC error and starts
 * again on the next request, after a backoff (0.5 s doubling to 30 s) when it exited within
 * 10 s of starting; a request unanswered within `timeoutMs` gets an error (and the process a
 * cancellation); a process that wrote nothing meanwhile is asked for a ping, and killed when
 * nothing comes back within 5 s (or the timeout, if shorter).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Agent } from 'undici';
import { IDENTITY_META_KEY } from './identity-meta.js';
import { StdioProcess } from './stdio-process.js';
import { isValidPrincipalId, isValidTeamOrRole, isValidTrustDomain } from '../identity/names.js';
import { credentialFor, readSecrets, type Credential } from './credentials.js';
import { leaving, logTargets, restore, scopeRequest, type LogLevel } from './stdio-notify.js';
import { discoverResult, envelopeLogLevel, initializeFromEnvelope, modernResult, withoutEnvelope } from './stdio-modern.js';
import { protocolEra } from '../mcp/protocol-era.js';
import { ProcessBudget, ProcessLimitError, type BudgetMember, type Lease } from './stdio-budget.js';

export type ProcessModel = 'shared' | 'per-principal' | 'per-team';

export interface StdioUpstreamOptions {
  /** the route's path, for log lines and /healthz */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** variables for the child besides the safe base (PATH, HOME, ...): values may use `{principal.id}` and `{team}` */
  readonly env: Record<string, string>;
  readonly cwd?: string;
  readonly processModel: ProcessModel;
  readonly maxProcesses: number;
  readonly idleMs: number;
  readonly maxLineBytes: number;
  /** pass the clients' roots to the process (roots capability, roots/list, roots/list_changed); default off: a client's roots would widen what args allow (server-filesystem takes them as its allowed folders) */
  readonly clientRoots?: boolean;
  /** a request unanswered this long gets a JSON-RPC error */
  readonly timeoutMs: number;
  /** secrets for a caller's own process, chosen by identity (credentials.ts) */
  readonly credentials?: readonly Credential[];
  /** a caller no credentials entry is for is refused */
  readonly credentialsRequired?: boolean;
  /** the environment the safe base variables (and `{env: NAME}` secrets) are taken from (the CLI passes the gateway's) */
  readonly baseEnv?: Record<string, string | undefined>;
  /** the process caps shared with the gateway's other stdio upstreams, and the queue at them (stdio-budget.ts); default: this upstream's own */
  readonly budget?: ProcessBudget;
  /** sessions held at most (default 100,000), the least recently used forgotten first */
  readonly maxSessions?: number;
  /** of them, at most this many per caller (default 1,000): past it the caller's own least recently used goes, never another's */
  readonly maxSessionsPerCaller?: number;
  /** server-to-client requests (sampling, elicitation, roots) waiting for one session's answers at once (default {@link MAX_SERVER_REQUESTS_PER_SESSION}, 100); past it the process gets a JSON-RPC error naming the limit */
  readonly maxServerRequestsPerSession?: number;
  /** the same, for one process across its sessions (default {@link MAX_SERVER_REQUESTS}, 1,000) */
  readonly maxServerRequests?: number;
  readonly log: (line: string) => void;
}

/** The variables a child gets from the gateway's environment; nothing else (a secret in the gateway's environment stays there). */
const BASE_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'SHELL', 'SYSTEMROOT', 'NODE_OPTIONS'];

const CRASH_WINDOW_MS = 10_000;
/** sessions: forgotten after this long unused (as the gateway's own), at most this many, least recently used first */
const SESSION_IDLE_MS = 8 * 3600_000;
const MAX_SESSIONS = 100_000;
const MAX_SESSIONS_PER_CALLER = 1_000;
/**
 * server-to-client requests (sampling, elicitation, roots, ping) a process may have waiting for
 * their clients' answers at once: per session, and in all of its sessions together. Past either,
 * the process gets a JSON-RPC error naming the limit instead of the request reaching a client.
 */
export const MAX_SERVER_REQUESTS_PER_SESSION = 100;
export const MAX_SERVER_REQUESTS = 1_000;
const BACKOFF_MS = [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000];
/** how long a process silent through a request's timeout has to answer a ping (at most the timeout) before it is killed */
const PROBE_MS = 5_000;

interface Caller {
  readonly session: Session;
  readonly clientId: unknown;
  readonly write: (message: unknown) => void;
  readonly answered: () => void;
  readonly timer?: NodeJS.Timeout;
  readonly progressToken?: string;
}

interface Session {
  readonly id: string;
  readonly slot: Slot;
  /**
   * the caller as the routing of messages that name no request tells callers apart, and whose
   * share of the sessions it counts in: the principal, `via` the actor of a delegated
   * certificate (found in review: bob and a platform acting for him were one caller, so bob's
   * log messages went to the platform's stream)
   */
  readonly principal: string;
  getStream?: ServerResponse;
  readonly subscriptions: Set<string>;
  /** the level this session asked for with logging/setLevel (stdio-notify.ts) */
  logLevel?: LogLevel;
  /** a 2026-07-28 request's own session, as long as the request (stdio-modern.ts): the process's server info */
  readonly modern?: { serverInfo: unknown };
  lastUsed: number;
}

interface Slot {
  readonly key: string;
  readonly principalId?: string;
  readonly kind?: string;
  readonly trustDomain?: string;
  readonly team?: string;
  /** the credentials entry its process gets, or -1 */
  readonly credential: number;
  proc?: StdioProcess;
  /** its process's right to run (stdio-budget.ts), released when the process has exited */
  lease?: Lease;
  /** a start waiting for room under the caps: later requests of the slot wait for the same one */
  starting?: Promise<Record<string, unknown>>;
  /** resolves with the initialize result once the process answered it */
  ready?: Promise<Record<string, unknown>>;
  initParams?: Record<string, unknown>;
  nextId: number;
  readonly pending: Map<number, Caller>;
  readonly progress: Map<string, Caller>;
  /** server-to-client requests sent to a caller: gateway id -> the process's id and the session */
  readonly serverRequests: Map<string, { procId: unknown; session: Session; at: number }>;
  readonly sessions: Set<Session>;
  lastUsed: number;
  /** when the process last wrote a message: one silent since a request timed out has stopped answering */
  lastMessageAt: number;
  /** the process the sessions' subscriptions and level were last given to (stdio-notify.ts) */
  restoredTo?: StdioProcess;
  crashes: number;
  nextStartAt: number;
}

type Rpc = { jsonrpc?: string; id?: unknown; method?: string; params?: Record<string, unknown>; result?: unknown; error?: unknown };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The caller the gateway named in `_meta` (its principal URI, id and teams). */
function callerOf(m: Rpc): Caller0 | undefined {
  const meta = isObject(m.params) && isObject(m.params._meta) ? m.params._meta[IDENTITY_META_KEY] : undefined;
  if (!isObject(meta) || typeof meta.principal !== 'string') return undefined;
  // spiffe://<trust domain>/<kind>/<id>: each part checked again before it can reach a path or an argument
  const parts = /^spiffe:\/\/([^/]+)\/([a-z]+)\/([^/]+)$/.exec(meta.principal);
  if (!parts || !isValidTrustDomain(parts[1]!) || !isValidPrincipalId(parts[3]!)) return undefined;
  const names = (v: unknown) => (Array.isArray(v) ? v.filter((t): t is string => typeof t === 'string' && isValidTeamOrRole(t)) : []);
  if (meta.actingFor === undefined) return { principal: meta.principal, trustDomain: parts[1]!, kind: parts[2]!, id: parts[3]!, teams: names(meta.teams), roles: names(meta.roles) };
  // a delegated certificate (docs/delegation.md): the process, its {principal.id} and its
  // credential are the person's it acts for, with the delegated teams and roles, never the
  // platform's (one process and one credential for everyone it serves: the collapse delegation
  // exists to end); `via` keeps the actor in the key, so bob's own process and the process of a
  // platform acting for bob stay apart
  const af = meta.actingFor;
  const d = isObject(af) && typeof af.principal === 'string' ? /^spiffe:\/\/([^/]+)\/([a-z]+)\/([^/]+)$/.exec(af.principal) : null;
  if (!isObject(af) || !d || !isValidTrustDomain(d[1]!) || !isValidPrincipalId(d[3]!)) return undefined;
  return { principal: af.principal as string, trustDomain: d[1]!, kind: d[2]!, id: d[3]!, teams: names(af.teams), roles: names(af.roles), via: meta.principal };
}

/** The caller of a stdio route, as the gateway named it in `_meta` ({@link stdioCallerOf}). */
export type Caller0 = { principal: string; trustDomain: string; kind: string; id: string; teams: string[]; roles: string[]; via?: string };

/** The caller the gateway named in a request's `_meta`: the person a delegated certificate acts for, `via` its holder. */
export const stdioCallerOf = (m: { params?: Record<string, unknown> }): Caller0 | undefined => callerOf(m as Rpc);
type TemplateValues = { principalId?: string; kind?: string; trustDomain?: string; team?: string };

/**
 * `{principal.id}`, `{principal.kind}`, `{trustDomain}` and `{team}` in a template; the values
 * are checked names (identity/names.ts), which hold no `/` and are never `.` or `..`.
 */
export function fillTemplate(template: string, values: TemplateValues): string {
  const of: Record<string, string | undefined> = { 'principal.id': values.principalId, 'principal.kind': values.kind, trustDomain: values.trustDomain, team: values.team };
  return template.replace(/\{(principal\.id|principal\.kind|trustDomain|team)\}/g, (all, name: string) => of[name] ?? all);
}

/** Whether a template names the caller. */
export const namesCaller = (s: string): boolean => /\{(principal\.id|principal\.kind|trustDomain|team)\}/.test(s);

const rpcError = (id: unknown, message: string, code = -32603) => ({ jsonrpc: '2.0', id, error: { code, message } });

export class StdioUpstream {
  readonly #o: StdioUpstreamOptions;
  readonly #slots = new Map<string, Slot>();
  readonly #sessions = new Map<string, Session>();
  /** each caller's sessions, least recently used first: one caller opening sessions without end pushes out only its own */
  readonly #byOwner = new Map<string, Set<Session>>();
  #dir?: string;
  #server?: http.Server;
  #agent?: Agent;
  #sweeper?: NodeJS.Timeout;
  #closed = false;

  /** processes being asked for a ping after a silent timeout (#probe) */
  readonly #probing = new WeakSet<StdioProcess>();
  readonly #budget: ProcessBudget;
  readonly #member: BudgetMember;

  constructor(options: StdioUpstreamOptions) {
    this.#o = options;
    this.#budget = options.budget ?? new ProcessBudget({ queueLength: 100, queueTimeoutMs: options.timeoutMs });
    this.#member = {
      name: options.name,
      max: options.maxProcesses,
      idle: () =>
        this.#running()
          .filter((s) => s.pending.size === 0 && !s.proc!.stopping && s.lease)
          .map((s) => ({
            lastUsed: s.lastUsed,
            lease: s.lease!,
            stop: () => {
              this.#o.log(`${this.#tag(s)}: stopped to make room (at most ${this.#o.maxProcesses} processes for this upstream${this.#budget.limits.total !== undefined ? `, ${this.#budget.limits.total} in total` : ''}; least recently used idle one)`);
              void s.proc!.stop();
            },
          })),
    };
    this.#budget.join(this.#member);
  }

  /** The URL the gateway's route names (its host is a label: the dispatcher connects to the socket). */
  readonly url = new URL('http://stdio-upstream/mcp');

  /** The dispatcher that reaches the socket; valid after {@link listen}. */
  get dispatcher(): Agent {
    return this.#agent!;
  }

  async listen(): Promise<void> {
    this.#dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-mtls-stdio-'));
    fs.chmodSync(this.#dir, 0o700);
    const socketPath = path.join(this.#dir, 'upstream.sock');
    this.#server = http.createServer((req, res) => void this.#handle(req, res).catch((e: unknown) => {
      this.#o.log(`${this.#o.name}: ${(e as Error).message}`);
      if (!res.headersSent) res.writeHead(500).end();
      else res.end();
    }));
    await new Promise<void>((resolve, reject) => {
      this.#server!.once('error', reject);
      this.#server!.listen(socketPath, () => resolve());
    });
    this.#agent = new Agent({ connect: { socketPath }, keepAliveTimeout: 30_000 });
    if (this.#o.processModel !== 'shared') {
      this.#sweeper = setInterval(() => this.#sweep(), Math.max(50, Math.min(this.#o.idleMs / 2, 30_000)));
      this.#sweeper.unref();
    }
  }

  /** For /healthz and /metrics: processes running and the cap. */
  counts(): { processModel: ProcessModel; running: number; max: number; queued: number; sessions: number } {
    const { live, queued } = this.#budget.counts(this.#member);
    return { processModel: this.#o.processModel, running: live, max: this.#o.maxProcesses, queued, sessions: this.#sessions.size };
  }

  /** Stops every process (SIGTERM, then SIGKILL) and the listener. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#budget.close();
    clearInterval(this.#sweeper);
    for (const s of this.#sessions.values()) s.getStream?.end();
    await Promise.all([...this.#slots.values()].map((s) => s.proc?.stop()));
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server?.closeAllConnections();
    await this.#agent?.close().catch(() => undefined);
    if (this.#dir) fs.rmSync(this.#dir, { recursive: true, force: true });
  }

  #running(): Slot[] {
    return [...this.#slots.values()].filter((s) => s.proc?.alive);
  }

  #sweep(): void {
    const now = Date.now();
    for (const slot of this.#running()) {
      if (slot.pending.size === 0 && now - slot.lastUsed > this.#o.idleMs) {
        this.#o.log(`${this.#tag(slot)}: idle for ${this.#o.idleMs} ms, stopping`);
        void slot.proc!.stop();
      }
    }
  }

  #tag(slot: Slot): string {
    return `stdio upstream ${this.#o.name} [${slot.key}]${slot.proc?.pid ? ` pid ${slot.proc.pid}` : ''}`;
  }

  #keyOf(caller: Caller0): ({ key: string } & TemplateValues) | string {
    if (this.#o.processModel === 'shared') return { key: 'shared' };
    if (this.#o.processModel === 'per-principal') return { key: caller.via ? `${caller.principal} via ${caller.via}` : caller.principal, principalId: caller.id, kind: caller.kind, trustDomain: caller.trustDomain };
    const team = caller.teams[0];
    if (!team) return 'this upstream runs one process per team, and the certificate names no team';
    return { key: `team:${team}`, team };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'HEAD') return void res.writeHead(204).end();
    const sid = typeof req.headers['mcp-session-id'] === 'string' ? req.headers['mcp-session-id'] : undefined;
    const session = sid === undefined ? undefined : this.#sessions.get(sid);
    if (sid !== undefined && !session) return json(res, 404, rpcError(null, 'Session not found', -32001));
    if (session) {
      // most recently used last: the first is the one forgotten when there are too many
      session.lastUsed = Date.now();
      this.#sessions.delete(session.id);
      this.#sessions.set(session.id, session);
      const own = this.#byOwner.get(session.principal);
      own?.delete(session);
      own?.add(session);
    }
    if (req.method === 'DELETE') {
      if (!session) return json(res, 400, rpcError(null, 'Bad Request: no session', -32000));
      this.#endSession(session);
      return void res.writeHead(200).end();
    }
    if (req.method === 'GET') {
      if (!session) return json(res, 400, rpcError(null, 'Bad Request: no session', -32000));
      session.getStream?.end();
      session.getStream = res;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'mcp-session-id': session.id });
      res.flushHeaders();
      res.once('close', () => {
        if (session.getStream === res) session.getStream = undefined;
      });
      return;
    }
    if (req.method !== 'POST') return json(res, 405, rpcError(null, 'Method not allowed', -32000));
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return json(res, 400, rpcError(null, 'Parse error', -32700));
    }
    const messages = (Array.isArray(body) ? body : [body]) as Rpc[];
    const init = messages.find((m) => isObject(m) && m.method === 'initialize');
    if (init) return this.#initialize(init, res);
    // a 2026-07-28 request: no session, its envelope says what initialize would have (stdio-modern.ts)
    if (!session && !Array.isArray(body) && isObject(body) && protocolEra(body, req.headers) === 'modern') return this.#initialize(initializeFromEnvelope(body as Rpc), res, body as Rpc);
    if (!session) return json(res, 400, rpcError(null, 'Bad Request: no session (send initialize first)', -32000));
    return this.#post(session, messages, res);
  }

  async #initialize(m: Rpc, res: ServerResponse, modern?: Rpc): Promise<void> {
    const caller = callerOf(m);
    if (!caller) return json(res, 200, rpcError(m.id ?? null, 'this stdio upstream serves certificates whose principal is spiffe://<trust domain>/<kind>/<id>'));
    const keyed = this.#keyOf(caller);
    if (typeof keyed === 'string') return json(res, 200, rpcError(m.id ?? null, keyed));
    // a name that begins with "-" (an id may: PRINCIPAL_ID_RE) filled into an argument of its own would be an option of the server
    if (this.#o.args.some((a) => !a.startsWith('-') && fillTemplate(a, keyed).startsWith('-'))) {
      this.#o.log(`stdio upstream ${this.#o.name}: refused ${caller.principal}: its name would begin an argument with "-"`);
      return json(res, 200, rpcError(m.id ?? null, `this upstream's arguments name the caller, and ${caller.principal} would begin one with "-" (an option of the server); ask the gateway's operator`));
    }
    // a per-team process serves the whole team: only an entry for the team may be given to it
    const credential = this.#o.credentials?.length
      ? credentialFor(this.#o.credentials, this.#o.processModel === 'per-team' ? { teams: [keyed.team!], roles: [] } : { principal: caller.principal, principalId: caller.id, teams: caller.teams, roles: caller.roles })
      : -1;
    if (credential === -1 && this.#o.credentials?.length && this.#o.credentialsRequired !== false) {
      this.#o.log(`stdio upstream ${this.#o.name}: refused ${caller.principal}: no credentials entry is for it`);
      return json(res, 200, rpcError(m.id ?? null, `this upstream needs a credential, and the gateway has none for ${caller.principal}${this.#o.processModel === 'per-team' ? ` (team ${keyed.team})` : ''}; ask the gateway's operator`));
    }
    // the entry is part of the key: a certificate of the same principal with other roles gets its own process
    const key = { ...keyed, key: credential === -1 ? keyed.key : `${keyed.key}#credentials[${credential}]` };
    let slot = this.#slots.get(key.key);
    if (!slot) {
      slot = { ...key, credential, nextId: 1, pending: new Map(), progress: new Map(), serverRequests: new Map(), sessions: new Set(), lastUsed: Date.now(), lastMessageAt: 0, crashes: 0, nextStartAt: 0 };
      this.#slots.set(key.key, slot);
    }
    if (!slot.initParams) {
      // the process is initialized once, for every session of its key: it is told the client
      // features any of them may answer (each client answers for itself what it lacks); roots
      // only when configured, since a client's roots would override the folders args give
      let params = isObject(m.params) ? m.params : {};
      // a shared or per-team process serves several callers: told at initialize that it serves the first (and on every
      // restart again), a server that binds its session to that identity would serve everyone as them (found in review)
      if (this.#o.processModel !== 'per-principal' && isObject(params._meta)) {
        const { [IDENTITY_META_KEY]: _first, ...meta } = params._meta;
        params = { ...params, _meta: meta };
      }
      const { roots: _roots, ...caps } = isObject(params.capabilities) ? params.capabilities : {};
      slot.initParams = { ...params, capabilities: { ...caps, sampling: caps.sampling ?? {}, elicitation: caps.elicitation ?? {}, ...(this.#o.clientRoots ? { roots: { listChanged: true } } : {}) } };
    }
    let result: Record<string, unknown>;
    try {
      result = await this.#ready(slot);
    } catch (e) {
      if (e instanceof ProcessLimitError) return atCap(res, e, rpcError(m.id ?? null, e.message));
      return json(res, 200, rpcError(m.id ?? null, (e as Error).message));
    }
    const owner = caller.via ? `${caller.principal} via ${caller.via}` : caller.principal;
    if (modern) return this.#modern(slot, owner, result, modern, res);
    const session: Session = { id: crypto.randomUUID(), slot, principal: owner, subscriptions: new Set(), lastUsed: Date.now() };
    for (const old of this.#sessions.values()) {
      if (this.#sessions.size < (this.#o.maxSessions ?? MAX_SESSIONS) && Date.now() - old.lastUsed < SESSION_IDLE_MS) break;
      this.#endSession(old);
    }
    // the caller's own share first: past it, its own least recently used session goes (found in review: one caller opening
    // sessions without end pushed everyone else's out of the table)
    let own = this.#byOwner.get(owner);
    if (!own) this.#byOwner.set(owner, (own = new Set()));
    for (const old of own) {
      if (own.size < (this.#o.maxSessionsPerCaller ?? MAX_SESSIONS_PER_CALLER)) break;
      this.#endSession(old);
    }
    own.add(session);
    this.#sessions.set(session.id, session);
    slot.sessions.add(session);
    res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': session.id }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }));
  }

  /** A 2026-07-28 request on an initialized process: `server/discover` answered here, any other sent on as a session of its own. */
  #modern(slot: Slot, principal: string, init: Record<string, unknown>, m: Rpc, res: ServerResponse): Promise<void> | void {
    if (m.method === 'server/discover') return json(res, 200, { jsonrpc: '2.0', id: m.id, result: discoverResult(init) });
    const logLevel = envelopeLogLevel(m);
    const session: Session = { id: `request-${crypto.randomUUID()}`, slot, principal, subscriptions: new Set(), lastUsed: Date.now(), modern: { serverInfo: init.serverInfo }, ...(logLevel ? { logLevel } : {}) };
    return this.#post(session, [withoutEnvelope(m)], res);
  }

  /**
   * Why a new server-to-client request for `session` may not be held (undefined: it may). Held
   * requests older than the route's timeout are given up first (the process gets an error for
   * each): a client that never answers cannot hold a session or the process full for ever.
   */
  #serverRequestLimit(slot: Slot, proc: StdioProcess, session: Session): string | undefined {
    const now = Date.now();
    let mine = 0;
    for (const [gid, r] of slot.serverRequests) {
      if (now - r.at >= this.#o.timeoutMs) {
        slot.serverRequests.delete(gid);
        proc.send(rpcError(r.procId, `the client did not answer within ${this.#o.timeoutMs} ms`));
      } else if (r.session === session) mine++;
    }
    const perSession = this.#o.maxServerRequestsPerSession ?? MAX_SERVER_REQUESTS_PER_SESSION;
    const perProcess = this.#o.maxServerRequests ?? MAX_SERVER_REQUESTS;
    const unanswered = (n: number, where: string) => `the gateway holds at most ${n} unanswered requests from the server ${where} (its limit: the client has not answered them yet); this one was not sent`;
    if (mine >= perSession) return unanswered(perSession, 'per client session');
    if (slot.serverRequests.size < perProcess) return undefined;
    // full: fair between callers. One principal may open many sessions, so the process's limit
    // must not let one (never answering) lock every other caller out: the oldest request of the
    // principal holding the most is given up for another's; that principal's own new one is
    // refused (test/gateway/stdio-server-requests-fair.test.ts)
    const held = new Map<string, number>();
    for (const r of slot.serverRequests.values()) held.set(r.session.principal, (held.get(r.session.principal) ?? 0) + 1);
    let top = session.principal;
    for (const [p, n] of held) if (n > (held.get(top) ?? 0)) top = p;
    if (top === session.principal) return unanswered(perProcess, 'for this process, across its sessions');
    for (const [gid, r] of slot.serverRequests) {
      if (r.session.principal !== top) continue;
      slot.serverRequests.delete(gid);
      proc.send(rpcError(r.procId, `given up unanswered: the gateway holds at most ${perProcess} requests from the server for this process, and this client held the most of them when another's came`));
      break;
    }
    return undefined;
  }

  #endSession(session: Session): void {
    // the requests this session was asked and never answered: the process is told, none stays held
    const proc0 = session.slot.proc;
    for (const [gid, r] of session.slot.serverRequests) {
      if (r.session !== session) continue;
      session.slot.serverRequests.delete(gid);
      if (proc0?.alive) proc0.send(rpcError(r.procId, 'the client session ended before the client answered'));
    }
    session.getStream?.end();
    this.#sessions.delete(session.id);
    const own = this.#byOwner.get(session.principal);
    if (own?.delete(session) && own.size === 0) this.#byOwner.delete(session.principal);
    session.slot.sessions.delete(session);
    // what only this session held (subscriptions, a more verbose level) the process is told to drop
    const proc = session.slot.proc;
    if (proc?.alive && session.slot.ready) for (const m of leaving(session, session.slot.sessions)) this.#internal(session.slot, proc, m);
  }

  /** The process of a slot, started (and initialized) when it is not running; waits for room under the caps (stdio-budget.ts). */
  #ready(slot: Slot): Promise<Record<string, unknown>> {
    slot.lastUsed = Date.now();
    // a process being stopped (idle, evicted) takes no new request: a new one is started
    if (slot.proc?.alive && !slot.proc.stopping && slot.ready) return slot.ready;
    if (slot.starting) return slot.starting;
    if (this.#closed) return Promise.reject(new Error('the gateway is stopping'));
    const wait = slot.nextStartAt - Date.now();
    if (wait > 0) return Promise.reject(new Error(`the upstream process keeps exiting; it is started again in ${Math.ceil(wait / 1000)} s`));
    const starting = this.#budget.acquire(this.#member).then(
      (lease) => {
        slot.starting = undefined;
        if (this.#closed) {
          lease.release();
          throw new Error('the gateway is stopping');
        }
        return this.#start(slot, lease);
      },
      (e: unknown) => {
        slot.starting = undefined;
        throw e;
      },
    );
    slot.starting = starting;
    starting.catch(() => undefined);
    return starting;
  }

  /** Starts the slot's process under its lease, and initializes it. */
  #start(slot: Slot, lease: Lease): Promise<Record<string, unknown>> {
    slot.lastUsed = Date.now();
    const values: TemplateValues = { ...(slot.principalId ? { principalId: slot.principalId, kind: slot.kind!, trustDomain: slot.trustDomain! } : {}), ...(slot.team ? { team: slot.team } : {}) };
    const env: Record<string, string> = {};
    for (const k of BASE_ENV) {
      const v = this.#o.baseEnv?.[k];
      if (v !== undefined) env[k] = v;
    }
    for (const [k, v] of Object.entries(this.#o.env)) env[k] = fillTemplate(v, values);
    let secrets: string[] = [];
    if (slot.credential !== -1) {
      try {
        const read = readSecrets(this.#o.credentials![slot.credential]!, slot.credential, this.#o.baseEnv);
        secrets = Object.values(read);
        Object.assign(env, read);
      } catch (e) {
        // the log names the entry and its source; the caller learns only that it is unavailable
        this.#o.log(`stdio upstream ${this.#o.name} [${slot.key}]: ${(e as Error).message}`);
        lease.release();
        return Promise.reject(new Error('the credential for this upstream is unavailable (the gateway\'s log says why)'));
      }
    }
    const proc = new StdioProcess(
      { command: this.#o.command, args: this.#o.args.map((a) => fillTemplate(a, values)), env, ...(this.#o.cwd ? { cwd: fillTemplate(this.#o.cwd, values) } : {}), maxLineBytes: this.#o.maxLineBytes, secrets },
      `stdio upstream ${this.#o.name} [${slot.key}]`,
      this.#o.log,
      {
        message: (msg) => this.#fromProcess(slot, proc, msg),
        exit: (why) => {
          lease.release();
          this.#exited(slot, proc, why);
        },
      },
    );
    slot.proc = proc;
    slot.lease = lease;
    this.#o.log(`${this.#tag(slot)}: started`);
    slot.ready = new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = slot.nextId++;
      const timer = setTimeout(() => {
        slot.pending.delete(id);
        reject(new Error(`the upstream process did not answer initialize within ${this.#o.timeoutMs} ms`));
        proc.kill();
      }, this.#o.timeoutMs);
      slot.pending.set(id, {
        session: undefined as unknown as Session,
        clientId: id,
        timer,
        answered: () => clearTimeout(timer),
        write: (answer) => {
          const a = answer as Rpc;
          if (isObject(a.result)) {
            proc.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
            resolve(a.result);
          } else reject(new Error(`the upstream process refused initialize: ${JSON.stringify(a.error ?? a).slice(0, 300)}`));
        },
      });
      proc.send({ jsonrpc: '2.0', id, method: 'initialize', params: slot.initParams });
    });
    slot.ready.catch(() => undefined);
    return slot.ready;
  }

  #exited(slot: Slot, proc: StdioProcess, why: string): void {
    if (slot.proc !== proc) return;
    const crashed = !proc.stopping && !this.#closed;
    this.#o.log(`${this.#tag(slot)}: ${why}${crashed && slot.pending.size ? `; failing ${slot.pending.size} request(s) in flight` : ''}`);
    for (const [, c] of slot.pending) {
      if (c.timer) clearTimeout(c.timer);
      c.write(rpcError(c.clientId, `the upstream MCP server process ${crashed ? 'exited' : 'was stopped'} before answering (${why}); the next request starts it again`));
      c.answered();
    }
    slot.pending.clear();
    slot.progress.clear();
    slot.serverRequests.clear();
    slot.proc = undefined;
    slot.lease = undefined;
    slot.ready = undefined;
    if (crashed && Date.now() - proc.startedAt < CRASH_WINDOW_MS) {
      slot.nextStartAt = Date.now() + BACKOFF_MS[Math.min(slot.crashes, BACKOFF_MS.length - 1)]!;
      slot.crashes++;
    } else slot.crashes = 0;
  }

  async #post(session: Session, messages: Rpc[], res: ServerResponse): Promise<void> {
    const slot = session.slot;
    const requests = messages.filter((m) => isObject(m) && typeof m.method === 'string' && m.id !== undefined && m.id !== null);
    let proc: StdioProcess;
    try {
      await this.#ready(slot);
      proc = slot.proc!;
    } catch (e) {
      if (!requests.length) return json(res, 503, rpcError(null, (e as Error).message));
      const errors = requests.map((m) => rpcError(m.id, (e as Error).message));
      const answer = Array.isArray(messages) && messages.length > 1 ? errors : errors[0];
      if (e instanceof ProcessLimitError) return atCap(res, e, answer);
      return json(res, 200, answer);
    }
    // a process started again is told what the sessions had asked of the one before
    if (slot.restoredTo !== proc) {
      slot.restoredTo = proc;
      for (const m of restore(slot.sessions)) this.#internal(slot, proc, m);
    }
    // answers and notifications from the client
    for (const m of messages) {
      if (!isObject(m)) continue;
      if (typeof m.method !== 'string') {
        // the client's answer to a server-to-client request: only the session it was sent to answers it
        const sent = typeof m.id === 'string' ? slot.serverRequests.get(m.id) : undefined;
        if (sent && sent.session === session) {
          slot.serverRequests.delete(m.id as string);
          proc.send({ ...m, id: sent.procId });
        }
        continue;
      }
      if (m.id !== undefined && m.id !== null) continue;
      if (m.method === 'notifications/initialized') continue; // the gateway initialized the process itself
      if (m.method === 'notifications/roots/list_changed' && !this.#o.clientRoots) continue;
      if (m.method === 'notifications/cancelled' && isObject(m.params)) {
        const target = [...slot.pending].find(([, c]) => c.session === session && c.clientId === (m.params as Record<string, unknown>).requestId);
        if (target) proc.send({ ...m, params: { ...m.params, requestId: target[0] } });
        continue;
      }
      proc.send(m);
    }
    if (!requests.length) return void res.writeHead(202).end();
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...(session.modern ? {} : { 'mcp-session-id': session.id }) });
    let open = requests.length;
    const write = (message: unknown) => {
      if (!res.writableEnded && !res.destroyed) res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
    };
    for (const m of requests) {
      const id = slot.nextId++;
      let params = m.params;
      let progressToken: string | undefined;
      if (isObject(params) && isObject(params._meta) && params._meta.progressToken !== undefined) {
        progressToken = `p${id}`;
        params = { ...params, _meta: { ...params._meta, progressToken } };
      }
      const clientToken = isObject(m.params) && isObject(m.params._meta) ? m.params._meta.progressToken : undefined;
      const sentAt = Date.now();
      const timer = setTimeout(() => {
        const c = slot.pending.get(id);
        if (!c) return;
        slot.pending.delete(id);
        if (progressToken) slot.progress.delete(progressToken);
        // silent since this request went out (no answer, no progress, nothing): it may have stopped answering
        const silent = slot.proc === proc && slot.lastMessageAt < sentAt;
        this.#o.log(`${this.#tag(slot)}: no answer to ${m.method} within ${this.#o.timeoutMs} ms${silent ? '; the process wrote nothing since: asking it for a ping' : ''}`);
        c.write(rpcError(m.id, `the upstream MCP server did not answer within ${this.#o.timeoutMs} ms`));
        c.answered();
        // the server may stop working on it (MCP's cancellation); nobody waits for its answer now
        proc.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: `no answer within ${this.#o.timeoutMs} ms` } });
        // one slow call (a fetch that trickles) is not a hung process: killed only when it answers no ping either,
        // or one caller of a shared process could kill it under every other caller, again and again
        if (silent) this.#probe(slot, proc);
      }, this.#o.timeoutMs);
      const caller: Caller = {
        session,
        clientId: m.id,
        timer,
        ...(progressToken ? { progressToken } : {}),
        write: (msg) => {
          const r = msg as Rpc;
          // the client's own progress token and request id back in place
          if (r.method === 'notifications/progress' && isObject(r.params)) write({ ...r, params: { ...r.params, progressToken: clientToken } });
          else if (session.modern && r.method === undefined && isObject(r.result)) write({ ...r, result: modernResult(m.method, r.result, session.modern.serverInfo) });
          else write(msg);
        },
        answered: () => {
          clearTimeout(timer);
          if (progressToken) slot.progress.delete(progressToken);
          if (--open === 0) res.end();
          if (slot.pending.size === 0) this.#budget.changed();
        },
      };
      slot.pending.set(id, caller);
      if (progressToken) slot.progress.set(progressToken, caller);
      // session-scoped state (subscriptions, logging level) kept per session; the process gets the union
      const sent = { ...m, ...(params !== undefined ? { params } : {}) };
      const scoped = session.modern ? { forward: sent } : scopeRequest(session, slot.sessions, sent);
      if ('answer' in scoped || 'refuse' in scoped) {
        slot.pending.delete(id);
        caller.write('answer' in scoped ? { jsonrpc: '2.0', id: m.id, result: scoped.answer } : rpcError(m.id, scoped.refuse, -32000));
        caller.answered();
        continue;
      }
      proc.send({ ...scoped.forward, id });
    }
  }

  /** A process silent through a request's timeout: a ping; killed when nothing at all comes back within {@link PROBE_MS}. */
  #probe(slot: Slot, proc: StdioProcess): void {
    if (this.#probing.has(proc)) return;
    this.#probing.add(proc);
    const sentAt = Date.now();
    const id = slot.nextId++;
    // answered: a start waiting at the caps may have this process stopped now (as after any answer)
    slot.pending.set(id, { session: undefined as unknown as Session, clientId: id, write: () => undefined, answered: () => slot.pending.size === 0 && this.#budget.changed() });
    proc.send({ jsonrpc: '2.0', id, method: 'ping' });
    const wait = Math.min(PROBE_MS, this.#o.timeoutMs);
    setTimeout(() => {
      this.#probing.delete(proc);
      slot.pending.delete(id);
      if (slot.proc !== proc || !proc.alive || slot.lastMessageAt >= sentAt) return;
      this.#o.log(`${this.#tag(slot)}: it answered no ping within ${wait} ms either: killing it`);
      // out of the slot now, so the next request starts a new process rather than reach this one
      proc.stopping = true;
      this.#exited(slot, proc, 'it stopped answering');
      proc.kill();
    }, wait).unref();
  }

  /** A request of the gateway's own to a process (no caller): its answer is dropped, its failure logged. */
  #internal(slot: Slot, proc: StdioProcess, m: { method: string; params: Record<string, unknown> }): void {
    const id = slot.nextId++;
    // given up after the timeout: a request in flight keeps the process from its idle stop and from eviction
    const timer = setTimeout(() => {
      if (slot.pending.get(id) !== entry) return;
      slot.pending.delete(id);
      this.#o.log(`${this.#tag(slot)}: no answer to ${m.method} within ${this.#o.timeoutMs} ms`);
      if (slot.pending.size === 0) this.#budget.changed();
    }, this.#o.timeoutMs);
    timer.unref();
    const entry: Caller = {
      session: undefined as unknown as Session,
      clientId: id,
      timer,
      write: (a) => {
        if (isObject((a as Rpc).error)) this.#o.log(`${this.#tag(slot)}: ${m.method} refused: ${JSON.stringify((a as Rpc).error).slice(0, 200)}`);
      },
      answered: () => {
        clearTimeout(timer);
        if (slot.pending.size === 0) this.#budget.changed();
      },
    };
    slot.pending.set(id, entry);
    proc.send({ jsonrpc: '2.0', id, ...m });
  }

  /** The one caller a message that names no request of its own may go to: the latest in flight, when every request in flight is one principal's. */
  #soleCaller(slot: Slot): Caller | undefined {
    const callers = [...slot.pending.values()].filter((c) => c.session !== undefined);
    if (!callers.length || new Set(callers.map((c) => c.session.principal)).size !== 1) return undefined;
    return callers[callers.length - 1];
  }

  #fromProcess(slot: Slot, proc: StdioProcess, message: unknown): void {
    if (slot.proc !== proc) return;
    slot.lastUsed = slot.lastMessageAt = Date.now();
    for (const m of (Array.isArray(message) ? message : [message]) as Rpc[]) {
      if (!isObject(m)) continue;
      if (typeof m.method !== 'string') {
        // a response: to the caller whose request has this id, in the caller's id
        const c = typeof m.id === 'number' ? slot.pending.get(m.id) : undefined;
        if (!c) {
          this.#o.log(`${this.#tag(slot)}: dropped a response to no request in flight (id ${JSON.stringify(m.id)?.slice(0, 40)})`);
          continue;
        }
        slot.pending.delete(m.id as number);
        c.write({ ...m, id: c.clientId });
        c.answered();
        continue;
      }
      if (m.id !== undefined && m.id !== null) {
        // a server-to-client request (sampling, elicitation, roots, ping)
        if (m.method === 'roots/list' && !this.#o.clientRoots) {
          proc.send(rpcError(m.id, 'the gateway does not pass the clients\' roots to this server (clientRoots)', -32601));
          continue;
        }
        const c = this.#soleCaller(slot);
        if (!c) {
          proc.send(rpcError(m.id, 'the gateway cannot tell which client this request is for (requests of several callers are in flight)'));
          continue;
        }
        if (c.session.modern) {
          proc.send(rpcError(m.id, 'the client speaks MCP 2026-07-28, where the gateway does not bridge requests from the server (stdio-modern.ts)'));
          continue;
        }
        // held until the client answers: bounded per session and per process, an old one given up
        const limit = this.#serverRequestLimit(slot, proc, c.session);
        if (limit) {
          proc.send(rpcError(m.id, limit));
          continue;
        }
        const gid = `mcp-mtls-s${slot.nextId++}`;
        slot.serverRequests.set(gid, { procId: m.id, session: c.session, at: Date.now() });
        c.write({ ...m, id: gid });
        continue;
      }
      const params = isObject(m.params) ? m.params : {};
      if (m.method === 'notifications/progress') {
        const c = typeof params.progressToken === 'string' ? slot.progress.get(params.progressToken) : undefined;
        if (c) c.write(m);
        continue;
      }
      if (m.method === 'notifications/cancelled') {
        const c = typeof params.requestId === 'number' ? slot.pending.get(params.requestId) : undefined;
        if (c) c.write({ ...m, params: { ...params, requestId: c.clientId } });
        continue;
      }
      if (m.method.endsWith('/list_changed')) {
        for (const s of slot.sessions) sse(s.getStream, m);
        continue;
      }
      if (m.method === 'notifications/resources/updated') {
        for (const s of slot.sessions) if (typeof params.uri === 'string' && s.subscriptions.has(params.uri)) sse(s.getStream, m);
        continue;
      }
      if (m.method === 'notifications/message') {
        // the callers that asked for this level, and only while it can be told whose it is (stdio-notify.ts)
        const inFlight = [...slot.pending.values()].filter((c) => c.session !== undefined);
        const to = logTargets(params.level, slot.sessions, inFlight.map((c) => c.session));
        if (to.sole) inFlight[inFlight.length - 1]!.write(m);
        else for (const s of to.sessions) sse(s.getStream, m);
        continue;
      }
      // any other notification: to the one principal it can be for
      const c = this.#soleCaller(slot);
      if (c) c.write(m);
      else if (new Set([...slot.sessions].map((s) => s.principal)).size === 1) for (const s of slot.sessions) sse(s.getStream, m);
    }
  }
}

function sse(res: ServerResponse | undefined, message: unknown): void {
  if (res && !res.writableEnded && !res.destroyed) res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
}

/** A start refused at the process cap: 503 with Retry-After, the JSON-RPC error(s) in the body. */
function atCap(res: ServerResponse, e: ProcessLimitError, body: unknown): void {
  res.writeHead(503, { 'content-type': 'application/json', 'retry-after': String(e.retryAfter) }).end(JSON.stringify(body));
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
