/** `mcp-mtls connect` (the stdio bridge) and `mcp-mtls client-config` (its entry in desktop MCP apps). */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import { loadBundle, type Bundle } from '../bundle/load.js';
import { noteProfileServer, profileBundleFile, profileOfBundleFile, readProfileMeta } from '../bundle/profile-dir.js';
import { createBundleRenewer } from '../client/renewal.js';
import { serverUrl } from '../client/server-url.js';
import { MtlsError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { acquireLock, type HeldLock } from '../util/lock.js';
import { installRunner, npxRunner, runsFromNpxCache, type BridgeRunner } from './bridge-command.js';
import { claudeCodeNative, CLIENT_INFO, clientConfigFile, CLIENTS, hermesNative, NATIVE_CLIENTS, serverEntry, type ClientName } from './client-entries.js';
import { emit, readBundlePassphrase } from './io.js';
import { loadWithPeer } from './optional-peer.js';
import type { BridgeEvent } from '../client/bridge.js';

export function registerClient(program: Command): void {
  program
    .command('connect')
    .description('a stdio bridge to an mTLS MCP server, for desktop MCP apps that cannot present client certificates')
    .argument('[url]', 'the MCP server URL (default: the url in the bundle profile)')
    .option('--bundle <file>', 'a bundle profile, PKCS#12 file or PEM folder')
    .option('--profile <name>', 'the profile `mcp-mtls login` (or enroll --profile) wrote, instead of --bundle; it renews through its CA')
    .option('--passphrase-file <file>', 'the bundle passphrase (else $MCP_MTLS_BUNDLE_PASSPHRASE)')
    .option('--renew-url <url>', "renew the certificate through the CA's /renew while bridging, rewriting the bundle (else $MCP_MTLS_RENEW_URL, else renewUrl in the bundle profile)")
    .option('--keep-key', 'renew without a new key (default: a new key and a CSR on each renewal)')
    .option('--allow-insecure-loopback-http', 'development only: allow an http: URL to 127.0.0.0/8, [::1] or localhost (no TLS, no client certificate; the URL must be https: otherwise)')
    .option('--json', 'log on stderr as one JSON object per line (start-up, warnings, errors, renewals); stdout stays JSON-RPC')
    .addHelpText('after', '\nExamples (what a desktop app runs; `mcp-mtls client-config` writes the entry with absolute paths):\n  $ mcp-mtls connect https://mcp.acme.test/mcp --bundle ~/.mcp-mtls/alice.yaml\n  $ mcp-mtls connect --bundle ~/.mcp-mtls/alice.yaml --renew-url https://ca.acme.test/renew')
    .action(async (url: string | undefined, o) => {
      const bundle = await bundleForConnect(o);
      url ??= bundle.url ? undefined : soleServerOf(bundle);
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
    .description("the MCP server entry for a desktop client's configuration: the bridge, or (--native) the client's own client-certificate settings")
    .requiredOption('--client <client>', CLIENTS.join(' | '))
    .requiredOption('--name <name>', 'the server name shown in the client')
    .option('--bundle <file>', 'the bundle the bridge loads (with --native: a PEM folder, whose files the client reads)')
    .option('--profile <name>', 'the profile `mcp-mtls login` wrote, instead of --bundle (the entry names its bundle file by absolute path)')
    .option('--url <url>', 'the MCP server URL (default: the url in the bundle profile)')
    .option('--renew-url <url>', "the bridge renews the certificate through the CA's /renew")
    .option('--allow-insecure-loopback-http', 'development only: the bridge may use an http: URL to 127.0.0.0/8, [::1] or localhost (no TLS, no client certificate)')
    .option('--runner <runner>', "how the entry starts the bridge: install (this mcp-mtls, by absolute paths) or npx (npx fetches this mcp-mtls version and @modelcontextprotocol/sdk, exact versions, on the first start: for a machine with only Node and npx); default install, npx when client-config itself runs from npx's cache")
    .option('--native', 'claude-code and hermes-agent: no bridge; the client connects itself and presents the certificate of a PEM folder (Claude Code: CLAUDE_CODE_CLIENT_CERT, CLAUDE_CODE_CLIENT_KEY, NODE_EXTRA_CA_CERTS in ~/.claude/settings.json; Hermes Agent: client_cert, client_key, ssl_verify of the server)')
    .option('--write', "merge the entry into the client's configuration file (a backup is kept)")
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mcp-mtls client-config --client claude-desktop --name acme-tools --bundle ~/.mcp-mtls/alice.yaml --write\n  $ npx -y mcp-mtls client-config --client cursor --name acme-tools --bundle ~/.mcp-mtls/alice.yaml --write   (writes an npx entry)\n  $ mcp-mtls client-config --client claude-code --native --name acme-tools --bundle ~/.mcp-mtls/alice --url https://mcp.acme.test/mcp --write',
    )
    .action(async (o) => {
      if (!CLIENTS.includes(o.client)) throw new MtlsError('USAGE', `unknown client "${o.client}"`, { hint: `use one of: ${CLIENTS.join(', ')}` });
      if (o.runner !== undefined && o.runner !== 'install' && o.runner !== 'npx') throw new MtlsError('USAGE', `--runner must be install or npx, not "${o.runner}"`);
      // the name is an argument of the printed `claude mcp add ...` line: one starting with - would be an option there
      if (/^-/.test(o.name as string)) throw new MtlsError('USAGE', `--name "${o.name}" starts with "-": a server name that command lines would read as an option`, { hint: 'use a name starting with a letter or digit, e.g. acme-tools' });
      const client = o.client as ClientName;
      if ((o.bundle === undefined) === (o.profile === undefined)) throw new MtlsError('USAGE', 'pass --bundle FILE or --profile NAME (one of them)');
      const bundleFile = o.profile !== undefined ? profileBundleFile(o.profile) : path.resolve(o.bundle);
      if (o.profile !== undefined) await loadBundle({ profile: o.profile }); // exists and is valid: say so now, not when the app starts
      let url = o.url as string | undefined;
      const bundle = url && !o.native ? undefined : await loadBundle(bundleFile, { passphrase: () => readBundlePassphrase(o) });
      url ??= bundle?.url;
      if (!url) throw new MtlsError('USAGE', 'no server URL: pass --url, or use a bundle profile made with --url');
      const allowInsecureLoopbackHttp = o.allowInsecureLoopbackHttp === true;
      serverUrl(url, { allowInsecureLoopbackHttp }); // the bridge would refuse it: say so now
      if (o.native) {
        if (!NATIVE_CLIENTS.has(client)) throw new MtlsError('USAGE', `${client} cannot present a client certificate itself: it needs the bridge (leave out --native)`, { hint: `--native is for ${[...NATIVE_CLIENTS].join(', ')}; docs/clients.md lists which clients can` });
        if (o.renewUrl || o.runner || allowInsecureLoopbackHttp) throw new MtlsError('USAGE', '--native writes no bridge: --renew-url, --runner and --allow-insecure-loopback-http do not apply');
        const title = CLIENT_INFO[client].title;
        if (bundle!.source.format !== 'pem') {
          throw new MtlsError('USAGE', `${title} reads the certificate and key from PEM files; ${bundleFile} is a ${bundle!.source.format === 'p12' ? 'PKCS#12 file' : 'bundle profile'}`, {
            hint: 'make a PEM folder (mcp-mtls bundle CERT --format pem --out DIR) and pass --bundle DIR',
          });
        }
        const dir = bundle!.source.file;
        const pem = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem'), ca: path.join(dir, 'ca.pem') };
        const encrypted = fs.readFileSync(pem.key, 'utf8').includes('ENCRYPTED');
        const renewNote = `Nothing renews the certificate (valid until ${bundle!.notAfter.toISOString()}): put a new one in ${dir} and restart ${title}, or use the bridge (without --native) with --renew-url.`;
        if (client === 'hermes-agent') {
          const { file, key } = clientConfigFile(client);
          const entry = hermesNative(url, pem);
          const notes = [
            `${title} presents ${pem.cert} to this server only and verifies it with ${pem.ca}.`,
            renewNote,
            ...(encrypted ? [`The key is encrypted: ${title} takes its passphrase as a third element of client_cert ([cert, key, passphrase]); client-config writes no passphrase.`] : []),
          ];
          const result = { file, [key]: { [o.name]: entry }, notes };
          if (!o.write) {
            emit(o.json, result, () => [`Add this to ${file}:`, yamlSnippet(key, o.name, entry).trimEnd(), ...notes, ''].join('\n'));
            return;
          }
          const existed = fs.existsSync(file);
          await withFileLocks([file], () => mergeYaml(file, key, o.name, entry));
          emit(o.json, { ...result, written: true }, () => `Wrote "${o.name}" to ${file}${existed ? ` (backup: ${file}.bak)` : ''}. Start a new ${title} session to load it.\n${notes.join('\n')}\n`);
          return;
        }
        const native = claudeCodeNative(o.name, url, pem);
        const notes = [
          `Claude Code presents ${native.env.CLAUDE_CODE_CLIENT_CERT} on every HTTPS connection it makes (one certificate for the whole process) and trusts ${native.env.NODE_EXTRA_CA_CERTS} besides the system CAs; it reads them at start.`,
          renewNote,
          ...(encrypted ? ['The key is encrypted: set CLAUDE_CODE_CLIENT_KEY_PASSPHRASE in the environment that starts Claude Code (client-config writes no passphrase).'] : []),
        ];
        const result = { file: native.file, mcpServers: { [o.name]: native.entry }, settingsFile: native.settingsFile, env: native.env, commands: native.commands, notes };
        if (!o.write) {
          emit(o.json, result, () =>
            [`Add this to ${native.file}:`, JSON.stringify({ mcpServers: result.mcpServers }, null, 2), `and this to ${native.settingsFile}:`, JSON.stringify({ env: native.env }, null, 2), 'Or, in a shell:', ...native.commands.map((c) => `  ${c}`), ...notes, ''].join('\n'),
          );
          return;
        }
        // both files checked before either is written
        const replaced = await withFileLocks([native.settingsFile, native.file], () => {
          const settingsEdit = jsonEdit(native.settingsFile, 'env', native.env);
          const serversEdit = jsonEdit(native.file, 'mcpServers', { [o.name]: native.entry });
          commitEdits([settingsEdit.edit, serversEdit.edit]);
          return settingsEdit.replaced;
        });
        for (const k of replaced) process.stderr.write(`mcp-mtls client-config: warning: ${native.settingsFile} set ${k} to another value: replaced (backup: ${native.settingsFile}.bak)\n`);
        emit(o.json, { ...result, written: true }, () => `Wrote "${o.name}" to ${native.file} and the certificate settings to ${native.settingsFile}. Restart Claude Code to load them.\n${notes.join('\n')}\n`);
        return;
      }
      const kind = (o.runner as 'install' | 'npx' | undefined) ?? (runsFromNpxCache() ? 'npx' : 'install');
      const runner: BridgeRunner = kind === 'npx' ? npxRunner() : installRunner();
      for (const w of runner.warnings) process.stderr.write(`mcp-mtls client-config: warning: ${w}\n`);
      const entry = serverEntry(client, url, bundleFile, runner, { ...(o.renewUrl ? { renewUrl: o.renewUrl as string } : {}), allowInsecureLoopbackHttp });
      const { file, key } = clientConfigFile(client);
      if (o.profile !== undefined && o.write) noteProfileServer(path.dirname(bundleFile), url); // for whoami
      const snippet = { [key]: { [o.name]: entry } };
      const runs = { runner: runner.kind, ...runner.runs };
      const pinned = `${runner.note}\n`;
      const yaml = file.endsWith('.yaml');
      if (!o.write) {
        emit(o.json, { file, ...snippet, runs }, () => `Add this to ${file}:\n${yaml ? yamlSnippet(key, o.name, entry).trimEnd() : JSON.stringify(snippet, null, 2)}\n${pinned}`);
        return;
      }
      await withFileLocks([file], () => (yaml ? mergeYaml(file, key, o.name, entry) : mergeJson(file, key, { [o.name]: entry })));
      emit(o.json, { file, written: true, ...snippet, runs }, () => `Wrote "${o.name}" to ${file}${fs.existsSync(`${file}.bak`) ? ` (backup: ${file}.bak)` : ''}. Restart ${client} to load it.\n${pinned}`);
    });
}

/**
 * The bundle of `connect`: --bundle FILE or --profile NAME. A profile whose certificate has
 * expired says to sign in again; on a terminal (run by hand, not by an app) it starts the
 * device flow itself and carries on with the new certificate.
 */
async function bundleForConnect(o: { bundle?: string; profile?: string; passphraseFile?: string }): Promise<Bundle> {
  if ((o.bundle === undefined) === (o.profile === undefined)) throw new MtlsError('USAGE', 'pass --bundle FILE or --profile NAME (one of them)', { hint: 'mcp-mtls connect https://host/mcp --profile default' });
  const passphrase = () => readBundlePassphrase(o);
  if (o.profile === undefined) return loadBundle(o.bundle!, { passphrase });
  try {
    return await loadBundle({ profile: o.profile }, { passphrase });
  } catch (e) {
    if (!(e instanceof MtlsError) || e.code !== 'CERT_EXPIRED' || !process.stdin.isTTY || !process.stderr.isTTY) throw e;
    if (readProfileMeta(path.dirname(profileBundleFile(o.profile)))?.via !== 'login') throw e;
    process.stderr.write(`mcp-mtls connect: ${e.message}; signing in now\n`);
    const { loginToProfile } = await import('./login.js');
    await loginToProfile({ profile: o.profile, mode: 'device', say: (line) => process.stderr.write(`${line}\n`) });
    return loadBundle({ profile: o.profile }, { passphrase });
  }
}

/** The one server a profile was configured for (client-config --profile), when there is exactly one. */
function soleServerOf(bundle: Bundle): string | undefined {
  const servers = profileOfBundleFile(bundle.source.file)?.servers ?? [];
  return servers.length === 1 ? servers[0] : undefined;
}

/** A file edit worked out in full before anything is written: {@link commitEdits} writes them all. */
interface FileEdit {
  /** where it is written: the file, or the target of a symlinked one (the symlink is kept) */
  readonly target: string;
  /** the previous text, kept as TARGET.bak; undefined when the file is new */
  readonly previous: string | undefined;
  readonly text: string;
}

const fixByHand = 'fix it by hand, or print the entry without --write and paste it';

/** The file to read and write for `file`: itself, or the target of a symlink (dotfile managers link these). */
function editTarget(file: string): string {
  let link = false;
  try {
    link = fs.lstatSync(file).isSymbolicLink();
  } catch {
    return file; // missing: created
  }
  if (!link) return file;
  try {
    return fs.realpathSync(file);
  } catch (cause) {
    throw new MtlsError('BAD_ARGUMENT', `${file} is a symlink to ${fs.readlinkSync(file)}, which does not exist`, { cause, hint: 'fix or remove the symlink, then run client-config again' });
  }
}

/** Writes every edit (backups first, each file atomically, 0600), after all of them were checked. */
function commitEdits(edits: readonly FileEdit[]): void {
  for (const e of edits) {
    if (e.previous === undefined) fs.mkdirSync(path.dirname(e.target), { recursive: true });
    else writeFileAtomic(`${e.target}.bak`, e.previous, { mode: 0o600 });
  }
  for (const e of edits) writeFileAtomic(e.target, e.text, { mode: 0o600 });
}

/**
 * Runs `fn` (a read-merge-write of `files`) holding a lock beside each file's target, so that
 * client-config runs at once (a script adding servers) do not lose each other's entries.
 * The lock is a file TARGET.mcp-mtls-lock (util/lock.ts), removed after; one left by a dead process is taken over.
 */
async function withFileLocks<T>(files: readonly string[], fn: () => T): Promise<T> {
  const targets = [...new Set(files.map(editTarget))].sort(); // one order: no deadlock between runs
  const held: HeldLock[] = [];
  try {
    for (const t of targets) {
      fs.mkdirSync(path.dirname(t), { recursive: true });
      try {
        held.push(await acquireLock(`${t}.mcp-mtls-lock`, { waitMs: 30_000 }));
      } catch (e) {
        if (!(e instanceof MtlsError) || e.code !== 'STORE_LOCKED') throw e;
        throw new MtlsError('STORE_LOCKED', `${t} is being edited by another mcp-mtls client-config`, { hint: `wait for it to finish; if no such process exists, remove ${t}.mcp-mtls-lock`, cause: e });
      }
    }
    for (const h of held) h.assertHeld();
    return fn();
  } finally {
    for (const h of held.reverse()) h.release();
  }
}

/**
 * A server name as a YAML key that YAML 1.1 readers (PyYAML, as Python agents load their config)
 * read as the same string: plain when it is a plain word, else double-quoted. Plain `<<` is a
 * merge key there (the entry's fields would land among the servers), `on` / `yes` / `no` booleans,
 * `~` null, `12` a number.
 */
function yamlName(name: string): YAML.Scalar {
  const key = new YAML.Scalar(name);
  const plain = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) && !/^(y|n|yes|no|true|false|on|off|null)$/i.test(name);
  if (!plain) key.type = YAML.Scalar.QUOTE_DOUBLE;
  return key;
}

/** Sets server `name` under the map `key` of `doc` (replacing one of the same name, its key rewritten as {@link yamlName}). */
function setServer(doc: YAML.Document, key: string, name: string, entry: Record<string, unknown>): void {
  const servers = doc.get(key) as YAML.YAMLMap;
  const value = doc.createNode(entry);
  const pair = servers.items.find((p) => (YAML.isScalar(p.key) ? p.key.value : p.key) === name);
  if (pair) {
    pair.key = yamlName(name);
    pair.value = value;
  } else {
    servers.items.push(new YAML.Pair(yamlName(name), value));
  }
}

/** `key: {name: entry}` as YAML, written as {@link mergeYaml} writes it. */
function yamlSnippet(key: string, name: string, entry: Record<string, unknown>): string {
  const doc = new YAML.Document({ [key]: {} });
  setServer(doc, key, name, entry);
  return doc.toString();
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Merges `entries` into the object under `key` of the JSON file (created when missing; the
 * previous text kept as FILE.bak), 0600. Returns the names whose earlier, different value was replaced.
 */
function mergeJson(file: string, key: string, entries: Record<string, unknown>): string[] {
  const { edit, replaced } = jsonEdit(file, key, entries);
  commitEdits([edit]);
  return replaced;
}

/** {@link mergeJson} without writing: refuses a file that is not a JSON object, or whose `key` holds something else than an object. */
function jsonEdit(file: string, key: string, entries: Record<string, unknown>): { edit: FileEdit; replaced: string[] } {
  const target = editTarget(file);
  let current: Record<string, unknown> = {};
  let previous: string | undefined;
  if (fs.existsSync(target)) {
    previous = fs.readFileSync(target, 'utf8');
    let parsed: unknown;
    try {
      parsed = previous.trim() ? JSON.parse(previous) : {};
    } catch (e) {
      throw new MtlsError('BAD_ARGUMENT', `${file} is not valid JSON: ${(e as Error).message}`, { hint: fixByHand });
    }
    if (!isObject(parsed)) throw new MtlsError('BAD_ARGUMENT', `${file} does not hold a JSON object`, { hint: fixByHand });
    current = parsed;
  }
  const held = current[key];
  if (held !== undefined && held !== null && !isObject(held)) throw new MtlsError('BAD_ARGUMENT', `${file}: "${key}" is not an object`, { hint: fixByHand });
  const before = held ?? {};
  const replaced = Object.keys(entries).filter((k) => k in before && JSON.stringify(before[k]) !== JSON.stringify(entries[k]));
  return { edit: { target, previous, text: `${JSON.stringify({ ...current, [key]: { ...before, ...entries } }, null, 2)}\n` }, replaced };
}

/**
 * Sets `key.name` to `entry` in the YAML file (created when missing; the previous text kept as
 * FILE.bak), keeping the rest of the document, comments included. 0600.
 */
function mergeYaml(file: string, key: string, name: string, entry: Record<string, unknown>): void {
  const target = editTarget(file);
  let doc = new YAML.Document({});
  let previous: string | undefined;
  if (fs.existsSync(target)) {
    previous = fs.readFileSync(target, 'utf8');
    if (previous.trim()) {
      doc = YAML.parseDocument(previous);
      if (doc.errors.length) throw new MtlsError('BAD_ARGUMENT', `${file} is not valid YAML: ${doc.errors[0]!.message}`, { hint: fixByHand });
      if (!YAML.isMap(doc.contents)) throw new MtlsError('BAD_ARGUMENT', `${file} does not hold a YAML mapping`, { hint: fixByHand });
    }
  }
  const held = doc.get(key, true);
  if (held !== undefined && !(YAML.isScalar(held) && held.value === null) && !YAML.isMap(held)) throw new MtlsError('BAD_ARGUMENT', `${file}: ${key} is not a mapping`, { hint: fixByHand });
  if (!YAML.isMap(held)) doc.set(key, doc.createNode({}));
  setServer(doc, key, name, entry);
  commitEdits([{ target, previous, text: doc.toString() }]);
}
