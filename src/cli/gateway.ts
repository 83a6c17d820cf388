/** `mcp-mtls gateway`: mTLS identity and per-tool policy in front of any Streamable HTTP MCP server. */
import type { Command } from 'commander';
import { loadGatewayConfig, GatewayConfigSchema, type GatewayConfig } from '../gateway/config.js';
import { startGateway } from '../gateway/run.js';
import { MtlsError } from '../errors.js';
import { collect } from './io.js';
import { splitCommandLine } from '../gateway/stdio-config.js';
import { FORWARDED_FORMATS, type ForwardedFormat } from '../mtls/trusted-proxies.js';

export function registerGateway(program: Command): void {
  program
    .command('gateway')
    .description('an mTLS gateway with per-tool policy in front of MCP servers (Streamable HTTP or stdio)')
    .option('--config <file>', 'gateway.yaml (docs/gateway.md); or the flags below for one upstream')
    .option('--listen <host:port>', 'where to listen', '127.0.0.1:8443')
    .option('--upstream <url>', 'the MCP server to protect, e.g. http://127.0.0.1:3000/mcp')
    .option('--upstream-command <command line>', 'instead of --upstream: a stdio MCP server the gateway runs, e.g. "npx -y @modelcontextprotocol/server-memory"')
    .option('--process-model <model>', 'with --upstream-command: shared (one process), per-principal or per-team', 'shared')
    .option('--path <prefix>', 'the path clients use', '/mcp')
    .option('--policy <file>', 'the access policy (docs/policy.md)')
    .option('--cert <file>', "the gateway's server certificate chain")
    .option('--key <file>', "the gateway's key")
    .option('--pki <dir>', 'a CA folder: trust its root, load its CRLs')
    .option('--ca <file>', 'or: the trusted root certificate(s)')
    .option('--crl <file>', 'with --ca: a CRL (repeatable)', collect, [])
    .option('--crl-url <url>', 'fetch a CRL from this http(s) URL and apply it live (repeatable)', collect, [])
    .option('--crl-from-certs', 'also fetch the CRL URLs the CA wrote into certificates (cRLDistributionPoints); a CA\'s clients are refused until a CRL of it is fetched')
    .option('--crl-refresh <duration>', 'how often to fetch CRL URLs', '5m')
    .option('--mode <mode>', 'default (401 with the reason) or strict (refuse at connection)', 'default')
    .option('--trusted-proxy <cidr=format>', 'accept the client certificate a TLS-terminating proxy at these addresses forwards; format rfc9440, xfcc, nginx, alb or traefik (repeatable; docs/operations.md)', collect, [])
    .option('--trusted-proxy-header <name>', 'the header of the nginx format (default ssl-client-cert)')
    .option('--audit <file>', 'append one JSON line per decision to this file')
    .option('--allowed-host <name>', "a Host name clients may use besides the certificate's names and loopback, e.g. a load balancer's; \"*\" turns the DNS rebinding check off (repeatable)", collect, [])
    .option('--allowed-origin <origin>', 'a browser Origin accepted besides http(s) origins on an accepted host, e.g. https://app.acme.test (repeatable)', collect, [])
    .option('--json', 'log on stderr as one JSON object per line (start-up, reloads, warnings, errors)')
    .addHelpText('after', '\nExamples:\n  $ mcp-mtls gateway --config gateway.yaml\n  $ mcp-mtls gateway --upstream http://127.0.0.1:3000/mcp --policy policy.yaml --cert certs/gw.crt --key certs/gw.key --pki ./pki --listen 0.0.0.0:8443\n  $ mcp-mtls gateway ... --ca root.crt --crl-url https://ca.acme.test/crl/root.crl --crl-url https://ca.acme.test/crl/intermediate.crl --crl-refresh 1m')
    .action(async (o) => {
      let config: GatewayConfig;
      if (o.config) {
        config = loadGatewayConfig(o.config);
        if (o.crlUrl.length) config = { ...config, tls: { ...config.tls, crlUrls: [...(config.tls.crlUrls ?? []), ...o.crlUrl] } };
        if (o.trustedProxy.length) config = { ...config, trustedProxies: [...(config.trustedProxies ?? []), ...trustedProxyFlags(o.trustedProxy, o.trustedProxyHeader)] };
        if (o.allowedHost.length) config = { ...config, allowedHosts: [...(config.allowedHosts ?? []), ...o.allowedHost] };
        if (o.allowedOrigin.length) config = { ...config, allowedOrigins: [...(config.allowedOrigins ?? []), ...o.allowedOrigin] };
      } else {
        if ((!o.upstream && !o.upstreamCommand) || !o.policy || !o.cert || !o.key || (!o.pki && !o.ca)) {
          throw new MtlsError('USAGE', 'without --config the gateway needs --upstream (or --upstream-command), --policy, --cert, --key and --pki (or --ca)', { hint: 'or write a gateway.yaml (docs/gateway.md)' });
        }
        if (o.upstream && o.upstreamCommand) throw new MtlsError('USAGE', 'give --upstream (an HTTP server) or --upstream-command (a stdio server), not both', { hint: 'a gateway.yaml can have one route of each (docs/gateway.md)' });
        const stdio = o.upstreamCommand ? stdioFlag(o.upstreamCommand, o.processModel) : undefined;
        const parsed = GatewayConfigSchema.safeParse({
          listen: o.listen,
          mode: o.mode,
          tls: {
            cert: o.cert,
            key: o.key,
            ...(o.pki ? { pki: o.pki } : { ca: o.ca, crl: o.crl }),
            ...(o.crlUrl.length ? { crlUrls: o.crlUrl } : {}),
            ...(o.crlFromCerts ? { crlFromCertificates: true } : {}),
            crlRefresh: o.crlRefresh,
          },
          routes: [{ path: o.path, ...(stdio ? { stdio } : { upstream: o.upstream }), policy: o.policy }],
          ...(o.audit ? { audit: o.audit } : {}),
          ...(o.trustedProxy.length ? { trustedProxies: trustedProxyFlags(o.trustedProxy, o.trustedProxyHeader) } : {}),
          ...(o.allowedHost.length ? { allowedHosts: o.allowedHost } : {}),
          ...(o.allowedOrigin.length ? { allowedOrigins: o.allowedOrigin } : {}),
        });
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          throw new MtlsError('USAGE', `${issue.path.join('.')}: ${issue.message}`, { hint: 'see mcp-mtls gateway --help' });
        }
        config = parsed.data;
      }
      const log = (message: string, fields: Record<string, unknown> = {}) =>
        process.stderr.write(
          o.json
            ? `${JSON.stringify({ time: new Date().toISOString(), level: /^warning|failed|invalid|cannot/.test(message) ? 'warn' : 'info', message, ...fields })}\n`
            : `mcp-mtls gateway: ${message}\n`,
        );
      const gw = await startGateway(config, (line) => log(line), { env: process.env }).catch((e: unknown) => {
        throw listenError(e, config.listen);
      });
      // the port it got (listen: HOST:0 picks a free one), under the host name it was given
      const url = `https://${config.listen.replace(/:\d+$/, '')}:${gw.address.port}`;
      log(`listening on ${url} (${config.routes.map((r) => `${r.path} -> ${r.upstream ?? `stdio ${r.stdio!.command} (${r.stdio!.processModel})`}`).join(', ')})`, {
        event: 'start',
        url,
        routes: config.routes.map((r) => ({ path: r.path, ...(r.upstream ? { upstream: r.upstream } : { command: r.stdio!.command, processModel: r.stdio!.processModel }) })),
      });
      process.on('SIGHUP', () => gw.reload());
      const stop = async () => {
        log('stopping, letting requests in flight finish', { event: 'stop' });
        await gw.stop();
        process.exit(0);
      };
      process.once('SIGTERM', () => void stop());
      process.once('SIGINT', () => void stop());
      await new Promise(() => undefined); // runs until a signal
    });
}

/** `--upstream-command "<command line>"` and `--process-model` as a route's `stdio` (split as a shell would, run without one). */
function stdioFlag(line: string, processModel: string): { command: string; args: string[]; processModel: string } {
  let words: string[];
  try {
    words = splitCommandLine(line);
  } catch (e) {
    throw new MtlsError('USAGE', `--upstream-command: ${(e as Error).message}`, { hint: 'quote it as a shell would: --upstream-command "npx -y @modelcontextprotocol/server-memory"' });
  }
  if (!words.length) throw new MtlsError('USAGE', '--upstream-command is empty', { hint: 'name the program and its arguments' });
  return { command: words[0]!, args: words.slice(1), processModel };
}

/** `--trusted-proxy CIDR=FORMAT` flags as gateway.yaml `trustedProxies` entries (`--trusted-proxy-header` for the nginx ones). */
export function trustedProxyFlags(flags: readonly string[], header: string | undefined): { from: string; format: ForwardedFormat; header?: string }[] {
  const out = flags.map((f) => {
    const eq = f.lastIndexOf('=');
    const format = f.slice(eq + 1) as ForwardedFormat;
    if (eq <= 0 || !FORWARDED_FORMATS.includes(format)) {
      throw new MtlsError('USAGE', `--trusted-proxy ${f}: expected CIDR=FORMAT with FORMAT one of ${FORWARDED_FORMATS.join(', ')}`, { hint: 'e.g. --trusted-proxy 10.0.0.0/8=nginx' });
    }
    return { from: f.slice(0, eq), format, ...(header && format === 'nginx' ? { header } : {}) };
  });
  if (header && !out.some((p) => p.format === 'nginx')) throw new MtlsError('USAGE', '--trusted-proxy-header names the header of the nginx format, but no --trusted-proxy uses it', { hint: 'e.g. --trusted-proxy 10.0.0.0/8=nginx --trusted-proxy-header x-client-cert' });
  return out;
}

/** A listen() failure that is the user's to fix (port taken, port not allowed, no such address) as a coded error; anything else as it is. */
export function listenError(e: unknown, listen: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') {
    return new MtlsError('IO_ERROR', `cannot listen on ${listen}: the address is in use by another program`, { hint: 'choose another --listen port (or listen: in gateway.yaml), or stop the program using it', cause: e });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new MtlsError('IO_ERROR', `cannot listen on ${listen}: permission denied`, { hint: 'ports below 1024 need privileges: choose a --listen port from 1024 up (e.g. 8443)', cause: e });
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
    return new MtlsError('IO_ERROR', `cannot listen on ${listen}: no such address on this machine`, { hint: 'use --listen 127.0.0.1:PORT, or 0.0.0.0:PORT for every interface', cause: e });
  }
  return e;
}
