/**
 * `mcp-mtls connect`: a stdio to Streamable HTTP bridge, so that desktop MCP apps (Claude
 * Desktop, VS Code, Cursor, MCP Inspector), which cannot present client certificates
 * themselves, can reach an mTLS MCP server. Newline-delimited JSON-RPC on stdin/stdout is
 * relayed through the SDK's own transports (so SSE responses, the GET notification stream
 * and sessions work as in any SDK client); logs go to stderr only; the bridge ends when
 * stdin closes, and exits with a clear message when the server refuses the certificate.
 * With a renewer, the bundle is renewed while bridging (renewal.ts) and the relay moves to
 * each new certificate without dropping a request.
 */
import type { Readable, Writable } from 'node:stream';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Bundle } from '../bundle/load.js';
import { isMtlsError } from '../errors.js';
import { CertificateRefusedError } from './agent.js';
import type { BundleRenewer } from './renewal.js';
import { createSdk1Transport } from './transport-sdk1.js';
import { stderrLog } from '../util/log.js';

export interface BridgeOptions {
  readonly url?: string;
  readonly bundle: Bundle;
  /**
   * Development only: relay to `http:` on a loopback address (127.0.0.0/8, [::1], localhost),
   * without TLS or client certificate, with a warning. Otherwise the URL must be https: (a
   * cleartext one throws MtlsError `INSECURE_URL` before anything is relayed).
   */
  readonly allowInsecureLoopbackHttp?: boolean;
  /** renews the bundle while bridging (new connections use each new certificate); stopped when the bridge ends */
  readonly renewer?: BundleRenewer;
  /** the stdio channel (the CLI passes the process's own): only JSON-RPC goes to stdout, lines for people go to `log` */
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly log?: (line: string) => void;
  /**
   * Receives each event as an object instead (the CLI's `--json`: one JSON object per line);
   * `log` is not called when this is given.
   */
  readonly logEvent?: (event: BridgeEvent) => void;
}

/** One thing the bridge reports: what `log` receives as a line (and a `hint: ...` line). */
export interface BridgeEvent {
  readonly level: 'info' | 'warn' | 'error';
  /** `start` (relaying), `warning`, `error` (a request or the stream failed), `refused` (the certificate), `stdout` (cannot write) */
  readonly event: 'start' | 'warning' | 'error' | 'refused' | 'stdout';
  readonly message: string;
  /** MtlsError code, for errors that have one */
  readonly code?: string;
  readonly hint?: string;
  /** for `start`: the server URL and the principal the bridge relays as (absent over cleartext http) */
  readonly url?: string;
  readonly principal?: string;
}

/**
 * Runs until stdin closes (resolves 0), the certificate is refused (resolves 77), or the
 * server cannot be reached before it ever answered (MtlsError `SERVER_UNREACHABLE` or
 * `SERVER_CERT_INVALID`, logged with its hint: resolves 69). Once the server has answered,
 * a connection failure is answered and logged, and the bridge carries on (a server restart).
 */
export function runBridge(options: BridgeOptions): Promise<number> {
  const log = options.log ?? stderrLog('mcp-mtls connect');
  const emit =
    options.logEvent ??
    ((e: BridgeEvent) => {
      log(e.message);
      if (e.hint) log(`hint: ${e.hint}`);
    });
  const stdin = options.stdin;
  const target = options.url ?? options.bundle.url;
  const allowInsecureLoopbackHttp = options.allowInsecureLoopbackHttp === true;
  const http = createSdk1Transport(options.renewer ?? options.bundle, options.url, { allowInsecureLoopbackHttp });
  const stdio = new StdioServerTransport(stdin, options.stdout);
  return new Promise((resolve) => {
    let finished = false;
    const finish = async (code: number) => {
      if (finished) return;
      finished = true;
      options.renewer?.stop();
      await Promise.race([http.close().catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
      await stdio.close().catch(() => undefined);
      resolve(code);
    };
    let reached = false;
    // the SDK hands a failed send() to onerror and rejects it too: each error is logged once
    const reported = new WeakSet<object>();
    const report = (e: Error, prefix = '') => {
      if (reported.has(e)) return;
      reported.add(e);
      emit({
        level: 'error',
        event: e instanceof CertificateRefusedError ? 'refused' : 'error',
        message: `${prefix}${e.message}`,
        ...(isMtlsError(e) ? { code: e.code, ...(e.hint ? { hint: e.hint } : {}) } : {}),
      });
    };
    http.onmessage = (m) => {
      reached = true;
      void stdio.send(m).catch((e) => emit({ level: 'error', event: 'stdout', message: `cannot write to stdout: ${(e as Error).message}` }));
    };
    http.onerror = (e) => {
      // closing aborts the SSE streams: the SDK reports that as "SSE stream disconnected: AbortError", which is no failure
      if (finished) return;
      if (e instanceof CertificateRefusedError) {
        report(e);
        void finish(77);
      } else if (!(isMtlsError(e) && e.kind === 'unavailable' && !reached)) report(e, 'server: '); // else: send() reports it
    };
    stdio.onmessage = (m: JSONRPCMessage) => {
      http.send(m).then(() => void (reached = true), async (e: Error) => {
        const id = (m as { id?: unknown }).id;
        if (id !== undefined) {
          await stdio.send({ jsonrpc: '2.0', id: id as string | number, error: { code: -32000, message: `mcp-mtls connect: ${e.message}` } }).catch(() => undefined);
        }
        report(e);
        if (e instanceof CertificateRefusedError) void finish(77);
        else if (!reached && isMtlsError(e) && e.kind === 'unavailable') void finish(69);
      });
    };
    stdio.onerror = (e) => emit({ level: 'error', event: 'error', message: `stdin: ${e.message}` });
    stdin.once('end', () => void finish(0));
    stdin.once('close', () => void finish(0));
    void http.start().then(() => stdio.start());
    // over http: the certificate is never presented: do not claim to relay as its principal
    if (target !== undefined && new URL(target).protocol === 'http:') {
      emit({ level: 'warn', event: 'start', url: target, message: `warning: relaying stdio to ${target} in cleartext: no TLS, no client certificate, the server is not authenticated (development only)` });
    } else {
      const principal = options.bundle.identity?.principal;
      emit({ level: 'info', event: 'start', ...(target !== undefined ? { url: target } : {}), ...(principal ? { principal } : {}), message: `relaying stdio to ${target} as ${principal ?? 'this certificate'}` });
    }
    for (const w of options.bundle.warnings) emit({ level: 'warn', event: 'warning', message: `warning: ${w}` });
  });
}
