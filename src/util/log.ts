/**
 * The one default logger of the library. Only the CLI prints; every library component takes a
 * `log` option (one line per call, without prefix or newline) and, when it is not given, uses
 * the logger made here for that component.
 *
 * The default writes to stderr rather than being silent on purpose: what goes to the log is a
 * warning someone must see (a CRL about to lapse, a fetch that keeps failing, a header that was
 * ignored, an upstream that fails), and a server embedded without a `log` option must not drop
 * it. stderr, never stdout: stdout may be a protocol channel (the stdio bridge's JSON-RPC).
 *
 * The prefix names the component, as in every message since the first release:
 * `mcp-mtls: ` (the mTLS server and middleware), `mcp-mtls gateway: `, `mcp-mtls connect: `.
 */

/** Receives one log line, without prefix or trailing newline. */
export type LogLine = (line: string) => void;

/** The components that log by default, named as their lines begin. */
export type LogComponent = 'mcp-mtls' | 'mcp-mtls gateway' | 'mcp-mtls connect';

/** A logger that writes each line to stderr after `<component>: `. */
export function stderrLog(component: LogComponent): LogLine {
  return (line) => void process.stderr.write(`${component}: ${line}\n`);
}

/** A logger that drops every line: the default of components whose events are reported otherwise (callbacks, status). */
export const silentLog: LogLine = () => undefined;
