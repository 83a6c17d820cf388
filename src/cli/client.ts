/** `mcp-mtls connect` (the stdio bridge) and `mcp-mtls client-config` (its entry in desktop MCP apps). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { loadBundle } from '../bundle/load.js';
import { createBundleRenewer } from '../client/renewal.js';
import { serverUrl } from '../client/server-url.js';
import { MtlsError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { installedBridge, type InstalledBridge } from './bridge-command.js';
import { emit, readBundlePassphrase } from './io.js';
import { loadWithPeer } from './optional-peer.js';
import type { BridgeEvent } from '../client/bridge.js';

const CLIENTS = ['claude-desktop', 'claude-code', 'vscode', 'cursor'] as const;
type ClientName = (typeof CLIENTS)[number];

/** Where each app keeps its MCP servers, and under which key. */
export function clientConfigFile(client: ClientName, env: NodeJS.ProcessEnv = process.env, platform = process.platform): { file: string; key: 'mcpServers' | 'servers' } {
  const home = env.HOME ?? os.homedir();
  switch (client) {
    case 'claude-desktop':
      if (platform === 'darwin') return { file: path.join(home, 'Library', 'Application Support', 'Claude', 'claude_desktop_config.json'), key: 'mcpServers' };
      if (platform === 'win32') return { file: path.join(env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'Claude', 'claude_desktop_config.json'), key: 'mcpServers' };
      return { file: path.join(env.XDG_CONFIG_HOME ?? path.join(home, '.config'), 'Claude', 'claude_desktop_config.json'), key: 'mcpServers' };
    case 'claude-code':
      return { file: path.join(home, '.claude.json'), key: 'mcpServers' };
    case 'cursor':
      return { file: path.join(home, '.cursor', 'mcp.json'), key: 'mcpServers' };
    case 'vscode':
      return { file: path.join(process.cwd(), '.vscode', 'mcp.json'), key: 'servers' };
  }
}

/**
 * The entry for one app: absolute paths of this node and this installed mcp-mtls (see
 * bridge-command.ts: never `npx mcp-mtls`, which runs whatever the registry serves).
 */
export function serverEntry(client: ClientName, url: string, bundle: string, runner: Pick<InstalledBridge, 'node' | 'bin'>, extra: { renewUrl?: string; allowInsecureLoopbackHttp?: boolean } = {}) {
  const args = [runner.bin, 'connect', url, '--bundle', bundle, ...(extra.renewUrl ? ['--renew-url', extra.renewUrl] : []), ...(extra.allowInsecureLoopbackHttp ? ['--allow-insecure-loopback-http'] : [])];
  return client === 'vscode' || client === 'claude-code' ? { type: 'stdio', command: runner.node, args } : { command: runner.node, args };
}

export function registerClient(program: Command): void {
  program
    .command('connect')
    .description('a stdio bridge to an mTLS MCP server, for desktop MCP apps that cannot present client certificates')
    .argument('[url]', 'the MCP server URL (default: the url in the bundle profile)')
    .requiredOption('--bundle <file>', 'a bundle profile, PKCS#12 file or PEM folder')
    .option('--passphrase-file <file>', 'the bundle passphrase (else $MCP_MTLS_BUNDLE_PASSPHRASE)')
    .option('--renew-url <url>', "renew the certificate through the CA's /renew while bridging, rewriting the bundle (else $MCP_MTLS_RENEW_URL, else renewUrl in the bundle profile)")
    .option('--keep-key', 'renew without a new key (default: a new key and a CSR on each renewal)')
    .option('--allow-insecure-loopback-http', 'development only: allow an http: URL to 127.0.0.0/8, [::1] or localhost (no TLS, no client certificate; the URL must be https: otherwise)')
    .option('--json', 'log on stderr as one JSON object per line (start-up, warnings, errors, renewals); stdout stays JSON-RPC')
    .addHelpText('after', '\nExamples (what a desktop app runs; `mcp-mtls client-config` writes the entry with absolute paths):\n  $ mcp-mtls connect https://mcp.acme.test/mcp --bundle ~/.mcp-mtls/alice.yaml\n  $ mcp-mtls connect --bundle ~/.mcp-mtls/alice.yaml --renew-url https://ca.acme.test/renew')
    .action(async (url: string | undefined, o) => {
      const bundle = await loadBundle(o.bundle, { passphrase: () => readBundlePassphrase(o) });
      if (!url && !bundle.url) throw new MtlsError('USAGE', 'no server URL: pass one, or use a bundle profile made with --url', { hint: 'mcp-mtls connect https://host/mcp --bundle FILE' });
      const allowInsecureLoopbackHttp = o.allowInsecureLoopbackHttp === true;
      serverUrl((url ?? bundle.url)!, { allowInsecureLoopbackHttp }); // https: only, before anything starts
      // the bridge runs on @modelcontextprotocol/sdk, an optional peer: loaded only here
      const { runBridge } = await loadWithPeer(() => import('../client/bridge.js'), '@modelcontextprotocol/sdk', 'connect');
      const renewUrl = (o.renewUrl as string | undefined) ?? process.env.MCP_MTLS_RENEW_URL ?? bundle.renewUrl;
      // logs on stderr only: stdout is the MCP stdio channel
      const jsonLine = (event: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
      const renewer = renewUrl
        ? createBundleRenewer({
            bundle,
            renewUrl,
            rekey: !o.keepKey,
            passphrase: () => readBundlePassphrase(o),
            log: o.json
              ? (line) => jsonLine({ level: /^renewal (refused|failed)|still holds the old one/.test(line) ? 'warn' : 'info', event: 'renewal', message: line })
              : (line) => process.stderr.write(`mcp-mtls connect: renewal: ${line}\n`),
          })
        : undefined;
      process.exitCode = await runBridge({
        bundle,
        stdin: process.stdin,
        stdout: process.stdout,
        allowInsecureLoopbackHttp,
        ...(url ? { url } : {}),
        ...(renewer ? { renewer } : {}),
        ...(o.json ? { logEvent: (e: BridgeEvent) => jsonLine({ ...e }) } : {}),
      });
    });

  program
    .command('client-config')
    .description("the MCP server entry that runs the bridge, for a desktop client's configuration")
    .requiredOption('--client <client>', CLIENTS.join(' | '))
    .requiredOption('--name <name>', 'the server name shown in the client')
    .requiredOption('--bundle <file>', 'the bundle the bridge loads')
    .option('--url <url>', 'the MCP server URL (default: the url in the bundle profile)')
    .option('--renew-url <url>', "the bridge renews the certificate through the CA's /renew")
    .option('--allow-insecure-loopback-http', 'development only: the bridge may use an http: URL to 127.0.0.0/8, [::1] or localhost (no TLS, no client certificate)')
    .option('--write', "merge the entry into the client's configuration file (a backup is kept)")
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  $ mcp-mtls client-config --client claude-desktop --name acme-tools --bundle ~/.mcp-mtls/alice.yaml --write')
    .action(async (o) => {
      if (!CLIENTS.includes(o.client)) throw new MtlsError('USAGE', `unknown client "${o.client}"`, { hint: `use one of: ${CLIENTS.join(', ')}` });
      const bundleFile = path.resolve(o.bundle);
      let url = o.url as string | undefined;
      if (!url) url = (await loadBundle(bundleFile, { passphrase: () => readBundlePassphrase(o) })).url;
      if (!url) throw new MtlsError('USAGE', 'no server URL: pass --url, or use a bundle profile made with --url');
      const allowInsecureLoopbackHttp = o.allowInsecureLoopbackHttp === true;
      serverUrl(url, { allowInsecureLoopbackHttp }); // the bridge would refuse it: say so now
      const client = o.client as ClientName;
      const runner = installedBridge();
      for (const w of runner.warnings) process.stderr.write(`mcp-mtls client-config: warning: ${w}\n`);
      const entry = serverEntry(client, url, bundleFile, runner, { ...(o.renewUrl ? { renewUrl: o.renewUrl as string } : {}), allowInsecureLoopbackHttp });
      const { file, key } = clientConfigFile(client);
      const snippet = { [key]: { [o.name]: entry } };
      const runs = { node: runner.node, bin: runner.bin, sdk: runner.sdk };
      const pinned = `It runs this install: ${runner.bin} with ${runner.node}; the bridge loads ${'@modelcontextprotocol/sdk'} ${runner.sdk.version} from ${runner.sdk.dir}. After upgrading or moving mcp-mtls or node, run client-config again.\n`;
      if (!o.write) {
        emit(o.json, { file, ...snippet, runs }, () => `Add this to ${file}:\n${JSON.stringify(snippet, null, 2)}\n${pinned}`);
        return;
      }
      let current: Record<string, unknown> = {};
      if (fs.existsSync(file)) {
        const text = fs.readFileSync(file, 'utf8');
        try {
          current = text.trim() ? (JSON.parse(text) as Record<string, unknown>) : {};
        } catch (e) {
          throw new MtlsError('BAD_ARGUMENT', `${file} is not valid JSON: ${(e as Error).message}`, { hint: 'fix it by hand, or print the entry without --write and paste it' });
        }
        writeFileAtomic(`${file}.bak`, text, { mode: 0o600 });
      } else {
        fs.mkdirSync(path.dirname(file), { recursive: true });
      }
      const servers = { ...((current[key] as Record<string, unknown>) ?? {}), [o.name]: entry };
      writeFileAtomic(file, `${JSON.stringify({ ...current, [key]: servers }, null, 2)}\n`, { mode: 0o600 });
      emit(o.json, { file, written: true, ...snippet, runs }, () => `Wrote "${o.name}" to ${file}${fs.existsSync(`${file}.bak`) ? ` (backup: ${file}.bak)` : ''}. Restart ${client} to load it.\n${pinned}`);
    });
}
