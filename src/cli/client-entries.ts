/**
 * What `mcp-mtls client-config` writes for each desktop client: where the client keeps its MCP
 * servers, the bridge entry (docs/clients.md's examples are generated from these functions, see
 * scripts/client-examples.ts), and, for the clients that present a client certificate
 * themselves, the native configuration instead of the bridge.
 */
import os from 'node:os';
import path from 'node:path';
import type { BridgeRunner } from './bridge-command.js';

export const CLIENTS = ['claude-desktop', 'claude-code', 'vscode', 'cursor', 'hermes-agent'] as const;
export type ClientName = (typeof CLIENTS)[number];

/** The clients that present a client certificate themselves: `--native` writes their own settings instead of the bridge. */
export const NATIVE_CLIENTS: ReadonlySet<ClientName> = new Set<ClientName>(['claude-code', 'hermes-agent']);

/** For docs/clients.md's table: whether each client presents a client certificate itself. */
export const CLIENT_INFO: Readonly<Record<ClientName, { readonly title: string; readonly native: string }>> = {
  'claude-desktop': { title: 'Claude Desktop', native: 'no: the bridge' },
  'claude-code': {
    title: 'Claude Code',
    native:
      'yes, from its environment, one certificate for the whole process: `CLAUDE_CODE_CLIENT_CERT`, `CLAUDE_CODE_CLIENT_KEY` (PEM files; `CLAUDE_CODE_CLIENT_KEY_PASSPHRASE` for an encrypted key), `NODE_EXTRA_CA_CERTS` for the server CA (`--native`, see below); or the bridge',
  },
  vscode: { title: 'VS Code', native: 'no: the bridge' },
  cursor: { title: 'Cursor', native: 'no: the bridge' },
  'hermes-agent': {
    title: 'Hermes Agent',
    native: 'yes, per server: `client_cert`, `client_key` and `ssl_verify` (the CA) under `mcp_servers.<name>` of an HTTP server (`--native`); or the bridge',
  },
};

/** Where each app keeps its MCP servers, and under which key. */
export function clientConfigFile(client: ClientName, env: NodeJS.ProcessEnv = process.env, platform = process.platform, cwd = process.cwd()): { file: string; key: 'mcpServers' | 'servers' | 'mcp_servers' } {
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
      return { file: path.join(cwd, '.vscode', 'mcp.json'), key: 'servers' };
    case 'hermes-agent':
      // YAML (hermes-agent's docs: ~/.hermes/config.yaml; on native Windows %LOCALAPPDATA%\hermes\config.yaml)
      if (platform === 'win32') return { file: path.join(env.LOCALAPPDATA ?? path.join(home, 'AppData', 'Local'), 'hermes', 'config.yaml'), key: 'mcp_servers' };
      return { file: path.join(home, '.hermes', 'config.yaml'), key: 'mcp_servers' };
  }
}

/** The options of the bridge that client-config passes on. */
export interface BridgeEntryOptions {
  readonly renewUrl?: string;
  readonly allowInsecureLoopbackHttp?: boolean;
}

/** The entry that runs the bridge: `runner` (this install, or npx with exact versions), then `connect URL --bundle FILE`. */
export function serverEntry(client: ClientName, url: string, bundle: string, runner: Pick<BridgeRunner, 'command' | 'args' | 'env'>, extra: BridgeEntryOptions = {}) {
  const args = [...runner.args, 'connect', url, '--bundle', bundle, ...(extra.renewUrl ? ['--renew-url', extra.renewUrl] : []), ...(extra.allowInsecureLoopbackHttp ? ['--allow-insecure-loopback-http'] : [])];
  const env = runner.env ? { env: { ...runner.env } } : {};
  return client === 'vscode' || client === 'claude-code' ? { type: 'stdio', command: runner.command, args, ...env } : { command: runner.command, args, ...env };
}

/** The PEM files of a bundle folder (cert.pem: the chain, key.pem, ca.pem). */
export interface PemFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/**
 * Claude Code without the bridge: it connects to the server over HTTP itself and presents the
 * client certificate named by `CLAUDE_CODE_CLIENT_CERT` / `CLAUDE_CODE_CLIENT_KEY` (its network
 * configuration, documented for its own connections and read once at start, for every HTTPS
 * connection it makes); `NODE_EXTRA_CA_CERTS` makes it trust the server's CA. These go into the
 * `env` of ~/.claude/settings.json, which Claude Code applies as its environment; the server is
 * an `http` entry in ~/.claude.json (what `claude mcp add --transport http` writes).
 */
export function claudeCodeNative(name: string, url: string, pem: PemFiles, env: NodeJS.ProcessEnv = process.env) {
  const home = env.HOME ?? os.homedir();
  const variables = { CLAUDE_CODE_CLIENT_CERT: pem.cert, CLAUDE_CODE_CLIENT_KEY: pem.key, NODE_EXTRA_CA_CERTS: pem.ca };
  const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return {
    /** ~/.claude.json, under mcpServers */
    file: path.join(home, '.claude.json'),
    entry: { type: 'http', url },
    /** ~/.claude/settings.json, under env */
    settingsFile: path.join(home, '.claude', 'settings.json'),
    env: variables,
    /** the same with Claude Code's own command, for a shell */
    commands: [...Object.entries(variables).map(([k, v]) => `export ${k}=${q(v)}`), `claude mcp add --transport http --scope user ${q(name)} ${q(url)}`],
  };
}

/**
 * Hermes Agent without the bridge: an HTTP server entry with the client certificate, its key and
 * the CA to verify the server with, per server (hermes-agent's MCP config reference: `client_cert`,
 * `client_key`, `ssl_verify`, paths to PEM files).
 */
export function hermesNative(url: string, pem: PemFiles) {
  return { url, client_cert: pem.cert, client_key: pem.key, ssl_verify: pem.ca };
}
