/**
 * Session-scoped notifications of a stdio process several sessions share (stdio-upstream.ts):
 * a stdio server sees one client (the gateway), so what MCP scopes to a session (resource
 * subscriptions, the logging level) the gateway keeps per session and the process gets the
 * union:
 *
 * - `resources/subscribe`: recorded for the session, and sent on (servers take it as
 *   idempotent); `resources/unsubscribe` is sent on only when no other session of the process
 *   still holds the URI (answered `{}` by the gateway otherwise), and a session that ends
 *   unsubscribes the URIs it was the last to hold. `notifications/resources/updated` goes to the
 *   sessions that subscribed to its URI, and to no other.
 * - `logging/setLevel`: recorded for the session; the process is told the most verbose level
 *   any of its sessions asked for, and each session gets only messages at or above its own.
 * - `notifications/message`: while requests of one principal only are in flight, to the latest
 *   of them (its POST stream), if that session asked for the level; while requests of several
 *   principals are in flight, to nobody (the gateway cannot tell whose request it is about);
 *   with nothing in flight, to every session that asked for the level (its GET stream). A
 *   session that never set a level gets messages only when its process serves one principal
 *   (as a server that was never told a level logs at its own).
 * - a process started again (crash, idle stop) is told the sessions' subscriptions and level
 *   before the first request that reaches it.
 */

export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const rank = (level: unknown): number => LOG_LEVELS.indexOf(level as LogLevel);
export const isLogLevel = (v: unknown): v is LogLevel => rank(v) !== -1;

/** What the gateway keeps of a session for its notifications. */
export interface NotifySession {
  readonly principal: string;
  readonly subscriptions: Set<string>;
  logLevel?: LogLevel;
}

type Rpc = { jsonrpc?: string; id?: unknown; method?: string; params?: Record<string, unknown> };
const uriOf = (m: Rpc): string | undefined => (typeof m.params?.uri === 'string' ? m.params.uri : undefined);

/** The most verbose level any session asked for, or undefined when none did. */
export function processLevel(sessions: Iterable<NotifySession>): LogLevel | undefined {
  let best = -1;
  for (const s of sessions) if (s.logLevel !== undefined && (best === -1 || rank(s.logLevel) < best)) best = rank(s.logLevel);
  return best === -1 ? undefined : LOG_LEVELS[best];
}

/** Resource subscriptions one session may hold (each is kept, and told again to a restarted process). */
export const MAX_SUBSCRIPTIONS_PER_SESSION = 1_000;

/**
 * A client's request as the process gets it: `forward` (possibly rewritten), `answer`
 * (answered by the gateway, not sent) or `refuse` (an error answer, not sent). `sessions`: every
 * session of the process, this one included.
 */
export function scopeRequest(session: NotifySession, sessions: Iterable<NotifySession>, m: Rpc): { forward: Rpc } | { answer: Record<string, unknown> } | { refuse: string } {
  const uri = uriOf(m);
  if (m.method === 'resources/subscribe' && uri !== undefined) {
    // bounded (found in review: a caller subscribing without end grew the gateway's and the process's memory, and every restart's replay)
    if (!session.subscriptions.has(uri) && session.subscriptions.size >= MAX_SUBSCRIPTIONS_PER_SESSION) return { refuse: `a session holds at most ${MAX_SUBSCRIPTIONS_PER_SESSION} resource subscriptions: unsubscribe some first` };
    session.subscriptions.add(uri);
    return { forward: m };
  }
  if (m.method === 'resources/unsubscribe' && uri !== undefined) {
    session.subscriptions.delete(uri);
    for (const s of sessions) if (s !== session && s.subscriptions.has(uri)) return { answer: {} };
    return { forward: m };
  }
  if (m.method === 'logging/setLevel' && isLogLevel(m.params?.level)) {
    session.logLevel = m.params.level;
    return { forward: { ...m, params: { ...m.params, level: processLevel(sessions) } } };
  }
  return { forward: m };
}

/** What the process is told when a session ends (removed from `rest` already): the URIs nobody holds now, the level the rest asks for. */
export function leaving(session: NotifySession, rest: Iterable<NotifySession>): { method: string; params: Record<string, unknown> }[] {
  const others = [...rest];
  const out: { method: string; params: Record<string, unknown> }[] = [];
  for (const uri of session.subscriptions) if (!others.some((s) => s.subscriptions.has(uri))) out.push({ method: 'resources/unsubscribe', params: { uri } });
  const before = processLevel([session, ...others]);
  const after = processLevel(others);
  if (after !== undefined && after !== before) out.push({ method: 'logging/setLevel', params: { level: after } });
  return out;
}

/** What a new process of these sessions is told (after a restart): every URI some session holds, the level they ask for. */
export function restore(sessions: Iterable<NotifySession>): { method: string; params: Record<string, unknown> }[] {
  const all = [...sessions];
  const out: { method: string; params: Record<string, unknown> }[] = [...new Set(all.flatMap((s) => [...s.subscriptions]))].map((uri) => ({ method: 'resources/subscribe', params: { uri } }));
  const level = processLevel(all);
  if (level !== undefined) out.push({ method: 'logging/setLevel', params: { level } });
  return out;
}

/** Whether a session is to get a log message of this level. `onePrincipal`: the process serves one principal only. */
export function wantsLog(session: NotifySession, level: unknown, onePrincipal: boolean): boolean {
  if (session.logLevel === undefined) return onePrincipal;
  return rank(level) !== -1 && rank(level) >= rank(session.logLevel);
}

/**
 * Who gets a `notifications/message`: `sole` (the latest request in flight, when they are one
 * principal's and that session wants it), or `sessions` (with nothing in flight, those that want it).
 */
export function logTargets<S extends NotifySession>(level: unknown, sessions: Iterable<S>, inFlight: readonly S[]): { sole?: true; sessions: S[] } {
  const all = [...sessions, ...inFlight];
  const onePrincipal = new Set(all.map((s) => s.principal)).size <= 1;
  if (inFlight.length) {
    if (new Set(inFlight.map((s) => s.principal)).size !== 1) return { sessions: [] };
    const latest = inFlight[inFlight.length - 1]!;
    return wantsLog(latest, level, onePrincipal) ? { sole: true, sessions: [latest] } : { sessions: [] };
  }
  return { sessions: [...sessions].filter((s) => wantsLog(s, level, onePrincipal)) };
}
