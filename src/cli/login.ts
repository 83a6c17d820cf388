/**
 * `mcp-mtls login`, `logout`, `enroll` and `whoami`: a person signs in at the company's identity
 * provider (or a workload trades an enrollment token) and gets a certificate into a named profile
 * (bundle/profile-dir.ts), which connect, client-config, loadBundle({ profile }) and the SDK
 * transports use; docs/login.md.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { Agent } from 'undici';
import { BUNDLE_FORMATS, writeBundle, type BundleFormat } from '../bundle/write.js';
import { DEFAULT_PROFILE, deleteProfile, profileDir, readProfileUnchecked, writeProfile, type ProfileMeta } from '../bundle/profile-dir.js';
import { caAgent, caBaseUrl, caEndpoint, caErrorOf, caRequest, pinRoot } from '../client/ca-pin.js';
import { sha256Hex } from '../util/sha256.js';
import { secureContextFor } from '../client/agent.js';
import { bundleText, obtainCertificate, type Obtained } from '../client/obtain-certificate.js';
import { chooseProvider, discover, fetchLoginConfig, signInWithBrowser, signInWithDevice } from '../client/oidc-sign-in.js';
import { MtlsError } from '../errors.js';
import { emit, once, readBundlePassphrase } from './io.js';
import { terminalSafe } from '../util/terminal-text.js';

/**
 * The two ways to pin the CA's root on the command line (client/ca-pin.ts), which `login` and
 * `enroll` both take: declared once so that their help and their meaning cannot drift apart.
 */
function caPinOptions(cmd: Command): Command {
  return cmd
    .option('--ca-fingerprint <hex>', "trust the CA whose root has this SHA-256 fingerprint (hex, colons allowed; the operator prints it with `openssl x509 -in pki/root.crt -noout -fingerprint -sha256`)")
    .option('--ca-bundle <file>', 'trust the root in this file (root.crt or a bundle the operator published) instead of downloading it');
}

/** The pin flags as pinRoot takes them; a flag not given stays absent (pinRoot then refuses to trust blindly). */
function caPinOf(o: { fingerprint?: string; caBundle?: string }): { fingerprint?: string; bundleFile?: string } {
  return { ...(o.fingerprint !== undefined ? { fingerprint: o.fingerprint } : {}), ...(o.caBundle !== undefined ? { bundleFile: o.caBundle } : {}) };
}

export type LoginMode = 'browser' | 'device';

export interface LoginRequest {
  readonly profile: string;
  /** the CA's URL; default: the profile's */
  readonly ca?: string;
  readonly fingerprint?: string;
  readonly caBundle?: string;
  readonly provider?: string;
  /** default: the browser when one can be opened here, else the device flow */
  readonly mode?: LoginMode;
  /** where the prompts go (the URL, the code); the CLI's stderr */
  readonly say: (line: string) => void;
  readonly browserTimeoutMs?: number;
}

/** A browser can be opened: macOS, Windows, or a desktop session on Linux/BSD that is not over SSH. */
function browserAvailable(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.SSH_CONNECTION || env.SSH_TTY) return false;
  if (process.platform === 'darwin' || process.platform === 'win32') return true;
  return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY) && opener() !== undefined;
}

function opener(): string[] | undefined {
  if (process.platform === 'darwin') return ['open'];
  if (process.platform === 'win32') return ['rundll32', 'url.dll,FileProtocolHandler'];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, 'xdg-open'))) return [path.join(dir, 'xdg-open')];
  }
  return undefined;
}

/** Starts the platform's URL opener, detached; its failure only means the printed URL is used. */
function openBrowser(url: string): void {
  const cmd = opener();
  if (!cmd) return;
  try {
    const child = spawn(cmd[0]!, [...cmd.slice(1), url], { detached: true, stdio: 'ignore' });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // the URL is printed anyway
  }
}

/** The CA and the root to trust: the pin flags, else (same CA, no flags) the root already in the profile. */
async function trustedCa(o: { ca?: string; fingerprint?: string; caBundle?: string }, existing: ReturnType<typeof readExisting>, profile: string): Promise<{ base: URL; root: Buffer; sha256: string }> {
  const caText = o.ca ?? existing?.meta?.ca;
  if (!caText) throw new MtlsError('USAGE', `profile "${profile}" does not exist yet: pass --ca URL (and --ca-fingerprint HEX or --ca-bundle FILE)`);
  const base = caBaseUrl(caText);
  if (o.fingerprint === undefined && o.caBundle === undefined && existing?.meta && caBaseUrl(existing.meta.ca).href === base.href) {
    const root = existing.ca.find((r) => sha256Hex(r) === existing.meta!.rootSha256);
    if (root) return { base, root, sha256: existing.meta.rootSha256 };
  }
  return { base, ...(await pinRoot(base, caPinOf(o))) };
}

function readExisting(profile: string) {
  try {
    return readProfileUnchecked(profile);
  } catch (e) {
    if ((e as MtlsError)?.code === 'FILE_NOT_FOUND') return undefined;
    throw e;
  }
}

/** Signs in and writes the profile; what `login` and an expired `connect --profile` on a terminal run. */
export async function loginToProfile(r: LoginRequest): Promise<{ bundleFile: string; meta: ProfileMeta; obtained: Obtained; renewUrl: string }> {
  // every line quotes what the CA or the provider sent (names, URLs, the code): printed terminal-safe
  const say = (line: string) => r.say(terminalSafe(line));
  const dir = profileDir(r.profile);
  const existing = readExisting(r.profile);
  const { base, root, sha256 } = await trustedCa(r, existing, r.profile);
  const agent = caAgent(root);
  try {
    const config = await fetchLoginConfig(agent, base); // the first verified request: the CA's TLS chains to the pinned root and names its host
    const provider = chooseProvider(config, r.provider ?? (existing?.meta?.provider && config.providers.some((p) => p.name === existing.meta!.provider) ? existing.meta.provider : undefined));
    const oidcConfig = await discover(provider);
    const mode = r.mode ?? (browserAvailable() ? 'browser' : 'device');
    const signedIn =
      mode === 'device'
        ? await signInWithDevice(oidcConfig, provider, (p) => {
            say(`To sign in to ${provider.name}, open ${p.verificationUri} and enter the code ${p.userCode}`);
            if (p.verificationUriComplete) say(`  (or open ${p.verificationUriComplete})`);
            say(`Waiting for you to sign in (the code expires in ${Math.round(p.expiresInSeconds / 60)} min)...`);
          })
        : await signInWithBrowser(
            oidcConfig,
            provider,
            (url) => {
              say(`To sign in to ${provider.name}, open this URL in your browser (opening it now if this machine can):`);
              say(`  ${url.href}`);
              // the authorization endpoint is the provider's word: only a web URL goes to the platform's opener (not file:, not a custom scheme)
              if (url.protocol === 'https:' || url.protocol === 'http:') openBrowser(url.href);
            },
            r.browserTimeoutMs,
          );
    const obtained = await obtainCertificate({
      agent,
      url: caEndpoint(base, config.sign),
      bearer: signedIn.idToken,
      root,
      ...(signedIn.nonce ? { headers: { 'mcp-mtls-nonce': signedIn.nonce } } : {}),
      what: 'sign-in',
    });
    const renewUrl = caEndpoint(base, config.renew).href;
    const meta: ProfileMeta = { version: 1, name: r.profile, via: 'login', ca: base.href, rootSha256: sha256, provider: provider.name, servers: existing?.meta?.servers ?? [], updatedAt: new Date().toISOString() };
    const bundleFile = writeProfile(dir, bundleText(obtained, root, { renewUrl, ...(existing?.url ? { url: existing.url } : {}) }), meta);
    return { bundleFile, meta, obtained, renewUrl };
  } finally {
    await agent.close().catch(() => undefined);
  }
}

const who = (o: Obtained) => {
  const id = o.bundle.identity;
  return id ? `${id.principal} teams=[${id.teams.join(',')}] roles=[${id.roles.join(',')}]` : 'a certificate without an identity';
};

/** The enrollment token: --token-file, else MCP_MTLS_TOKEN, else --token (with a warning: argv is visible to other users). */
function tokenOf(o: { token?: string; tokenFile?: string }): string {
  if (o.tokenFile !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(o.tokenFile, 'utf8');
    } catch (cause) {
      throw new MtlsError('FILE_NOT_FOUND', `cannot read --token-file ${o.tokenFile}`, { cause, hint: 'check the path' });
    }
    const t = text.trim();
    if (!t) throw new MtlsError('BAD_ARGUMENT', `--token-file ${o.tokenFile} is empty`);
    return t;
  }
  if (process.env.MCP_MTLS_TOKEN) return process.env.MCP_MTLS_TOKEN.trim();
  if (o.token !== undefined) {
    process.stderr.write('mcp-mtls enroll: warning: --token puts the secret in the command line, which other users of this machine can read (ps, /proc): prefer --token-file FILE or MCP_MTLS_TOKEN\n');
    return o.token;
  }
  throw new MtlsError('USAGE', 'no enrollment token: pass --token-file FILE or set MCP_MTLS_TOKEN', { hint: 'the operator makes one with `mcp-mtls token create --service ID --ttl 15m`' });
}

export function registerLogin(program: Command): void {
  caPinOptions(
    program
      .command('login')
      .description("sign in at your company's identity provider and get your certificate into a profile (the key is made here and never sent)")
      .option('--ca <url>', 'the CA (`mcp-mtls ca serve`) URL; default: the profile\'s', once('--ca'))
      .option('--profile <name>', 'the profile to write', DEFAULT_PROFILE)
      .option('--browser', 'sign in in a browser (code + PKCE on a loopback redirect); default when a browser can be opened here')
      .option('--device', 'sign in on another device (device flow: prints a URL and a code); default without a browser (SSH, no display)'),
  )
    .option('--provider <name>', 'the identity provider, when the CA accepts several')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  $ mcp-mtls login --ca https://ca.acme.test:8443 --ca-fingerprint 3A:5F:...\n  $ mcp-mtls login --device --profile acme     # on a machine without a browser\n  $ mcp-mtls login                             # again, later: the same CA and pinned root')
    .action(async (o) => {
      if (o.browser && o.device) throw new MtlsError('USAGE', '--browser and --device exclude each other');
      const r = await loginToProfile({
        profile: o.profile,
        ...(o.ca !== undefined ? { ca: o.ca } : {}),
        ...(o.caFingerprint !== undefined ? { fingerprint: o.caFingerprint } : {}),
        ...(o.caBundle !== undefined ? { caBundle: o.caBundle } : {}),
        ...(o.provider !== undefined ? { provider: o.provider } : {}),
        ...(o.browser ? { mode: 'browser' as const } : o.device ? { mode: 'device' as const } : {}),
        say: (line) => process.stderr.write(`${line}\n`),
      });
      const id = r.obtained.bundle.identity;
      emit(o.json, { profile: o.profile, bundle: r.bundleFile, principal: id?.principal, teams: id?.teams, roles: id?.roles, notAfter: r.obtained.bundle.notAfter.toISOString(), ca: r.meta.ca, renewUrl: r.renewUrl, provider: r.meta.provider }, () =>
        `Signed in as ${who(r.obtained)}\n  certificate valid until ${r.obtained.bundle.notAfter.toISOString()}, renewed through ${r.renewUrl} while it is valid\n  profile "${o.profile}": ${r.bundleFile}\nNext: mcp-mtls client-config --client claude-desktop --name NAME --profile ${o.profile} --url https://SERVER/mcp --write\n`,
      );
    });

  caPinOptions(
    program
      .command('enroll')
      .description('a workload trades a one-time enrollment token for a certificate: key (made here), CSR, POST /sign, bundle, in one step')
      .requiredOption('--ca <url>', 'the CA (`mcp-mtls ca serve`) URL', once('--ca'))
      .option('--token-file <file>', 'the enrollment token (mcpt_...) from a file (else $MCP_MTLS_TOKEN)')
      .option('--token <token>', 'the token itself (visible to other users in the process list: prefer --token-file or MCP_MTLS_TOKEN)')
      .option('--out <path>', 'write a bundle here (see --format) instead of a profile; never over an existing file')
      .option('--format <format>', 'with --out: profile (one YAML file), pem (a folder) or p12', 'profile')
      .option('--profile <name>', 'write the profile NAME (default: default, when --out is not given)')
      .option('--url <url>', 'the MCP server URL, kept in the bundle'),
  )
    .option('--passphrase-file <file>', 'with --format p12, or to encrypt the key: the bundle passphrase (else $MCP_MTLS_BUNDLE_PASSPHRASE)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExamples:\n  $ MCP_MTLS_TOKEN=$(cat token) mcp-mtls enroll --ca https://ca.acme.test:8443 --ca-fingerprint 3A:5F:... --out /etc/bot/bundle.yaml\n  $ mcp-mtls enroll --ca https://ca.acme.test:8443 --ca-bundle root.crt --token-file token --format pem --out /etc/bot/tls')
    .action(async (o) => {
      if (o.out !== undefined && o.profile !== undefined) throw new MtlsError('USAGE', '--out and --profile exclude each other');
      if (!BUNDLE_FORMATS.includes(o.format)) throw new MtlsError('USAGE', `--format must be one of ${BUNDLE_FORMATS.join(', ')}`);
      const token = tokenOf(o);
      const profile = o.out === undefined ? ((o.profile as string | undefined) ?? DEFAULT_PROFILE) : undefined;
      const dir = profile !== undefined ? profileDir(profile) : undefined;
      if (o.out !== undefined && fs.existsSync(o.out)) throw new MtlsError('OUTPUT_EXISTS', `${path.resolve(o.out)} exists already`, { hint: 'choose another --out; a bundle is never written over an existing file' });
      const password = o.format === 'p12' || o.passphraseFile ? await readBundlePassphrase(o, true) : undefined;
      const base = caBaseUrl(o.ca);
      const { root, sha256 } = await pinRoot(base, caPinOf({ fingerprint: o.caFingerprint, caBundle: o.caBundle }));
      const agent = caAgent(root);
      let obtained: Obtained;
      try {
        obtained = await obtainCertificate({ agent, url: caEndpoint(base, '/sign'), bearer: token, root, what: 'enrollment token' });
      } finally {
        await agent.close().catch(() => undefined);
      }
      const renewUrl = caEndpoint(base, '/renew').href;
      let files: string[];
      if (dir !== undefined) {
        const meta: ProfileMeta = { version: 1, name: profile!, via: 'enroll', ca: base.href, rootSha256: sha256, servers: o.url ? [o.url] : [], updatedAt: new Date().toISOString() };
        files = [writeProfile(dir, bundleText(obtained, root, { renewUrl, ...(o.url ? { url: o.url } : {}) }), meta)];
      } else {
        files = writeBundle(o.format as BundleFormat, o.out, {
          chain: obtained.chain,
          root,
          key: obtained.key,
          renewUrl,
          ...(o.url ? { url: o.url } : {}),
          ...(obtained.bundle.identity ? { principal: obtained.bundle.identity.principal } : {}),
          notAfter: obtained.bundle.notAfter,
          ...(password ? { password } : {}),
        });
      }
      const id = obtained.bundle.identity;
      emit(o.json, { ...(profile !== undefined ? { profile } : {}), files, principal: id?.principal, teams: id?.teams, roles: id?.roles, serial: id?.serial, notAfter: obtained.bundle.notAfter.toISOString(), renewUrl }, () =>
        `Enrolled ${who(obtained)}\n  certificate valid until ${obtained.bundle.notAfter.toISOString()}; renew through ${renewUrl} (mcp-mtls connect --renew-url, or the renewer in code)\n  wrote ${files.join(', ')}\n`,
      );
    });

  program
    .command('logout')
    .description("revoke the profile's certificate at the CA and delete its key and the profile")
    .option('--profile <name>', 'the profile', DEFAULT_PROFILE)
    .option('--force', 'delete the profile even when the CA cannot revoke the certificate (it stays valid until it expires)')
    .option('--json', 'print the result as JSON')
    .action(async (o) => {
      const p = readProfileUnchecked(o.profile);
      let revoked: string | undefined;
      let note: string | undefined;
      if (p.notAfter.getTime() <= Date.now()) {
        note = 'the certificate had expired: nothing to revoke';
      } else {
        try {
          revoked = await revokeOwn(o.profile);
        } catch (e) {
          if (!o.force) throw e;
          note = `not revoked (${(e as Error).message}); it stays valid until ${p.notAfter.toISOString()}`;
          process.stderr.write(`mcp-mtls logout: warning: ${note}\n`);
        }
      }
      deleteProfile(p.dir);
      emit(o.json, { profile: o.profile, deleted: p.dir, ...(revoked ? { revoked } : {}), ...(note ? { note } : {}) }, () =>
        `${revoked ? `Revoked certificate ${revoked}; servers refuse it once they load the CA's new CRL.\n` : note ? `${note}\n` : ''}Deleted profile "${o.profile}" (${p.dir}) and its key.\n`,
      );
    });

  program
    .command('whoami')
    .description('who this machine is with a profile: principal, teams, roles, CA, servers, valid until')
    .option('--profile <name>', 'the profile', DEFAULT_PROFILE)
    .option('--json', 'print the result as JSON')
    .action((o) => {
      const p = readProfileUnchecked(o.profile);
      const id = p.identity;
      const expired = p.notAfter.getTime() <= Date.now();
      const servers = [...new Set([...(p.url ? [p.url] : []), ...(p.meta?.servers ?? [])])];
      const out = {
        profile: o.profile,
        principal: id?.principal ?? null,
        teams: id?.teams ?? [],
        roles: id?.roles ?? [],
        ...(id?.email ? { email: id.email } : {}),
        serial: id?.serial ?? null,
        notAfter: p.notAfter.toISOString(),
        expired,
        ca: p.meta?.ca ?? null,
        renewUrl: p.renewUrl ?? null,
        via: p.meta?.via ?? null,
        ...(p.meta?.provider ? { provider: p.meta.provider } : {}),
        servers,
        bundle: p.bundleFile,
      };
      emit(o.json, out, () =>
        [
          `${out.principal ?? '(no identity in the certificate)'}`,
          `  teams:       ${out.teams.join(', ') || '-'}`,
          `  roles:       ${out.roles.join(', ') || '-'}`,
          `  valid until: ${out.notAfter}${expired ? ` (EXPIRED: ${p.meta?.via === 'enroll' ? 'enroll again with a new token' : `run \`mcp-mtls login --profile ${o.profile}\``})` : ''}`,
          `  CA:          ${out.ca ?? '-'}${out.provider ? ` (signed in with ${out.provider})` : out.via === 'enroll' ? ' (enrolled with a token)' : ''}`,
          `  servers:     ${servers.join(', ') || '- (none configured: mcp-mtls client-config --profile ' + o.profile + ' --url URL ...)'}`,
          `  profile:     ${p.bundleFile}`,
          '',
        ].join('\n'),
      );
    });
}

/** POST /revoke-self with the profile's own certificate (mTLS, the pinned root); the serial revoked. */
async function revokeOwn(profile: string): Promise<string> {
  const p = readProfileUnchecked(profile);
  if (!p.meta) throw new MtlsError('BAD_ARGUMENT', `profile "${profile}" has no profile.json: its CA is unknown`, { hint: 'pass --force to delete it without revoking' });
  const { loadBundle } = await import('../bundle/load.js');
  const bundle = await loadBundle({ profile });
  const agent = new Agent({ connect: { secureContext: secureContextFor(bundle) } as Agent.Options['connect'] });
  try {
    const url = caEndpoint(caBaseUrl(p.meta.ca), '/revoke-self');
    const a = await caRequest(agent, url, { method: 'POST', headers: { accept: 'application/json' }, body: '' });
    if (a.status === 200) return (JSON.parse(a.body.toString('utf8')) as { revoked: string }).revoked;
    const e = caErrorOf(a);
    if (e.code === 'CERT_REVOKED') return bundle.identity?.serial ?? '(revoked already)';
    throw new MtlsError('RENEWAL_REFUSED', `the CA did not revoke the certificate (${a.status}${e.code ? ` ${e.code}` : ''}): ${e.message}`, { hint: a.status === 404 ? 'this CA has no /revoke-self (an older mcp-mtls): ask the operator to revoke it, then logout --force' : (e.hint ?? 'logout --force deletes the profile anyway') });
  } finally {
    await agent.close().catch(() => undefined);
  }
}
