/**
 * Secrets the gateway gave an upstream (credentials.ts), taken out again of what the upstream
 * says: a careless server that writes its token to stderr or names it in an error would
 * otherwise put it in the gateway's log, or in an answer the model reads. Every occurrence of
 * a secret's exact text becomes `[redacted]`: in a log line as it is, in a JSON-RPC message in
 * its strings (keys and values), so the message stays well formed. A secret shorter than
 * {@link MIN_REDACTED_LENGTH} is not looked for (it would match ordinary text); an encoded or
 * partial copy (base64, a prefix) is not recognised.
 *
 * Cost: nothing when there are no secrets; otherwise one substring search per secret per line
 * or message, and a walk of the message only when one is found (or a `\u` or `\/` escape could hide one).
 */

export const REDACTED = '[redacted]';
export const MIN_REDACTED_LENGTH = 6;

export interface Redactor {
  /** a log line without the secrets */
  line(s: string): string;
  /** a serialized JSON value: whether a secret may be in it */
  inJson(serialized: string): boolean;
  /** a parsed JSON value without the secrets in its strings (a copy where anything changed) */
  value<T>(v: T): T;
}

const NONE: Redactor = { line: (s) => s, inJson: () => false, value: (v) => v };

/** A redactor for these secrets (duplicates and short ones dropped, longest first so a secret containing another goes whole). */
export function redactor(secrets: Iterable<string>): Redactor {
  const list = [...new Set([...secrets].filter((s) => s.length >= MIN_REDACTED_LENGTH))].sort((a, b) => b.length - a.length);
  if (!list.length) return NONE;
  // as each secret appears in serialized JSON: itself, and inside a JSON string with quotes, backslashes and control characters escaped (most tokens have none)
  const needles = [...new Set([...list, ...list.map((s) => JSON.stringify(s).slice(1, -1))])];
  const replace = (s: string) => {
    let out = s;
    for (const secret of list) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return replace(v);
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [replace(k), walk(x)]));
    return v;
  };
  return {
    line: replace,
    // a \u escape may spell any character of a secret (Python's json.dumps writes non-ASCII so), and \/ a slash (PHP's
    // json_encode does): looked at whole then
    inJson: (serialized) => serialized.includes('\\u') || serialized.includes('\\/') || needles.some((s) => serialized.includes(s)),
    value: <T>(v: T) => walk(v) as T,
  };
}
