/**
 * The generated parts of docs/clients.md: the table of desktop clients (which present a client
 * certificate themselves) and every configuration example, made by the functions
 * `mcp-mtls client-config` itself uses (src/cli/client-entries.ts, src/cli/bridge-command.ts)
 * for example paths, so the examples cannot drift from what the program writes. Written by
 * `npm run docs:cli` (with docs/cli.md); test/project/client-docs.test.ts fails when stale.
 * Each part sits between `<!-- generated:NAME:start ... -->` and `<!-- generated:NAME:end -->`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installRunner, npxRunnerOf } from '../src/cli/bridge-command.js';
import YAML from 'yaml';
import { claudeCodeNative, CLIENT_INFO, clientConfigFile, CLIENTS, hermesNative, NATIVE_CLIENTS, serverEntry, type ClientName } from '../src/cli/client-entries.js';
import { VERSION } from '../src/version.js';

const HOME = '/home/alice';
const URL = 'https://mcp.acme.test/mcp';
const BUNDLE = `${HOME}/.mcp-mtls/alice.yaml`;
const PEM = `${HOME}/.mcp-mtls/alice`;
const NAME = 'acme-tools';
const NODE = '/usr/local/bin/node';
const INSTALL = installRunner({ node: NODE, bin: '/usr/local/lib/node_modules/mcp-mtls/bin/mcp-mtls.js', sdk: { version: '1.x', dir: '' }, warnings: [] });
/** the SDK version in the example: the one this release is tested with (its devDependency) */
const TESTED_SDK =
  /(\d+\.\d+\.\d+)/.exec((JSON.parse(fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies['@modelcontextprotocol/sdk'] ?? '')?.[1] ?? '1.x';
const NPX = npxRunnerOf({ node: NODE, npx: '/usr/local/bin/npx', mcpMtls: VERSION, sdk: TESTED_SDK, platform: 'linux' });

/** JSON as people write it: two spaces, arrays of strings on one line. */
export function json(value: unknown, indent = ''): string {
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) return `[${value.map((v) => JSON.stringify(v)).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const inner = `${indent}  `;
    const entries = Array.isArray(value) ? value.map((v) => `${inner}${json(v, inner)}`) : Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${json(v, inner)}`);
    const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
    return entries.length ? `${open}\n${entries.join(',\n')}\n${indent}${close}` : `${open}${close}`;
  }
  return JSON.stringify(value);
}

const fence = (lang: string, text: string) => `\`\`\`${lang}\n${text}\n\`\`\``;
const cell = (s: string) => s.replace(/\|/g, '\\|');
const home = (file: string) => file.replace(HOME, '~');

function clientsTable(): string {
  const files = (c: ClientName) => {
    if (c === 'claude-desktop') {
      const mac = clientConfigFile(c, { HOME }, 'darwin').file;
      const win = clientConfigFile(c, { HOME, APPDATA: '%APPDATA%' }, 'win32').file.replace(/\//g, '\\');
      return `macOS \`${home(mac)}\`, Windows \`${win}\`, Linux \`${home(clientConfigFile(c, { HOME }, 'linux').file)}\``;
    }
    if (c === 'hermes-agent') return `\`${home(clientConfigFile(c, { HOME }, 'linux').file)}\` (native Windows: \`%LOCALAPPDATA%\\hermes\\config.yaml\`)`;
    if (c === 'vscode') return `\`${clientConfigFile(c, { HOME }, 'linux', '/WORKSPACE').file.replace('/WORKSPACE/', '')}\` in the workspace`;
    return `\`${home(clientConfigFile(c, { HOME }, 'linux').file)}\``;
  };
  const rows = ['| client | presents a client certificate itself | its MCP servers | `client-config --client` |', '|---|---|---|---|'];
  for (const c of CLIENTS) rows.push(`| ${CLIENT_INFO[c].title} | ${cell(CLIENT_INFO[c].native)} | ${files(c)}, under \`${clientConfigFile(c, { HOME }, 'linux').key}\` | \`${c}\`${NATIVE_CLIENTS.has(c) ? ' (`--native`, or the bridge)' : ' (the bridge)'} |`);
  return rows.join('\n');
}

function bridgeEntries(): string {
  const entry = (c: ClientName) => {
    const { key } = clientConfigFile(c, { HOME }, 'linux');
    return fence('json', json({ [key]: { [NAME]: serverEntry(c, URL, BUNDLE, INSTALL) } }));
  };
  return [
    '```sh',
    `mcp-mtls client-config --client claude-desktop --name ${NAME} --bundle ${home(BUNDLE)} --write`,
    '```',
    '',
    'Claude Desktop and Cursor:',
    '',
    entry('claude-desktop'),
    '',
    'VS Code (`.vscode/mcp.json`):',
    '',
    entry('vscode'),
    '',
    'Claude Code (`~/.claude.json`):',
    '',
    entry('claude-code'),
  ].join('\n');
}

function npxEntry(): string {
  return [
    '```sh',
    `npx -y mcp-mtls@${VERSION} client-config --client claude-desktop --name ${NAME} --bundle ${home(BUNDLE)} --write`,
    '```',
    '',
    'writes (`--runner npx`, the default when client-config runs from npx\'s cache):',
    '',
    fence('json', json({ mcpServers: { [NAME]: serverEntry('claude-desktop', URL, BUNDLE, NPX) } })),
  ].join('\n');
}

function claudeCodeNativeExample(): string {
  const n = claudeCodeNative(NAME, URL, { cert: `${PEM}/cert.pem`, key: `${PEM}/key.pem`, ca: `${PEM}/ca.pem` }, { HOME });
  return [
    '```sh',
    `mcp-mtls bundle ./certs/alice.crt --format pem --out ${home(PEM)}`,
    `mcp-mtls client-config --client claude-code --native --name ${NAME} --bundle ${home(PEM)} --url ${URL} --write`,
    '```',
    '',
    `writes the server into \`${home(n.file)}\`:`,
    '',
    fence('json', json({ mcpServers: { [NAME]: n.entry } })),
    '',
    `and the certificate into the \`env\` of \`${home(n.settingsFile)}\`:`,
    '',
    fence('json', json({ env: n.env })),
    '',
    'The same by hand, in the shell that starts `claude`:',
    '',
    fence('sh', n.commands.join('\n')),
  ].join('\n');
}

function hermesNativeExample(): string {
  const { file, key } = clientConfigFile('hermes-agent', { HOME }, 'linux');
  return [
    '```sh',
    `mcp-mtls client-config --client hermes-agent --native --name ${NAME} --bundle ${home(PEM)} --url ${URL} --write`,
    '```',
    '',
    `writes into \`${home(file)}\` (the rest of the file, comments included, is kept):`,
    '',
    fence('yaml', YAML.stringify({ [key]: { [NAME]: hermesNative(URL, { cert: `${PEM}/cert.pem`, key: `${PEM}/key.pem`, ca: `${PEM}/ca.pem` }) } }).trimEnd()),
  ].join('\n');
}

/** The generated parts, by marker name. */
export function clientExamples(): Record<string, string> {
  return {
    'clients-table': clientsTable(),
    'bridge-entries': bridgeEntries(),
    'npx-entry': npxEntry(),
    'claude-code-native': claudeCodeNativeExample(),
    'hermes-native': hermesNativeExample(),
  };
}

/** docs/clients.md with every generated part replaced; throws when a marker is missing. */
export function clientsDocWithExamples(doc: string): string {
  let out = doc;
  for (const [name, text] of Object.entries(clientExamples())) {
    const re = new RegExp(`(<!-- generated:${name}:start[^>]*-->\\n)[\\s\\S]*?(<!-- generated:${name}:end -->)`);
    if (!re.test(out)) throw new Error(`docs/clients.md has no <!-- generated:${name}:start --> ... <!-- generated:${name}:end --> markers`);
    out = out.replace(re, (_m, start: string, end: string) => `${start}${text}\n${end}`);
  }
  return out;
}

export const CLIENTS_DOC = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'clients.md');

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  fs.writeFileSync(CLIENTS_DOC, clientsDocWithExamples(fs.readFileSync(CLIENTS_DOC, 'utf8')));
  console.log(`wrote the generated parts of ${CLIENTS_DOC}`);
}
