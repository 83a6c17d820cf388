/**
 * Named profiles: where `mcp-mtls login` and `mcp-mtls enroll --profile` keep a bundle for this
 * user, and where `loadBundle({ profile })`, `connect --profile`, `client-config --profile`,
 * `whoami` and `logout` find it:
 *
 *   $XDG_CONFIG_HOME/mcp-mtls/profiles/<NAME>/   (default ~/.config/...; folders 0700)
 *     bundle.yaml    the bundle profile (docs/bundle.md): chain, key, pinned root, renewUrl (0600)
 *     profile.json   what the bundle does not say: the CA's URL, how it was made, the root's
 *                    fingerprint, the servers it is used for (0600)
 *
 * Both files are written atomically (temporary file, fsync, rename), the bundle last-but-one
 * and the metadata last, so that a reader finds either the old pair or the new one.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { MtlsError } from '../errors.js';
import { writeFilesAtomic } from '../util/atomic-file.js';
import { decodeIdentity } from '../identity/decode.js';
import type { Identity } from '../identity/identity.js';
import { readCertificates } from '../x509/pem.js';
import { parseBundleProfile } from './profile.js';

export const DEFAULT_PROFILE = 'default';
export const PROFILE_BUNDLE = 'bundle.yaml';
export const PROFILE_META = 'profile.json';

/** A profile name is one path segment people type: letters, digits, `.`, `_`, `-`; not `.` or `..`. */
export function assertProfileName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new MtlsError('BAD_ARGUMENT', `profile name "${name}" is not allowed`, { hint: 'use letters, digits, ".", "_" and "-" (at most 64, starting with a letter or digit), e.g. default or acme-prod' });
  }
  return name;
}

/** `$XDG_CONFIG_HOME/mcp-mtls/profiles` (an absolute XDG_CONFIG_HOME only, as the XDG spec says), else `~/.config/mcp-mtls/profiles`. */
export function profilesRoot(env?: NodeJS.ProcessEnv): string {
  // the one read of the environment outside cli/: a per-user folder is where XDG_CONFIG_HOME
  // or HOME say, so that loadBundle({ profile }) in any program finds what `login` wrote
  const e = env ?? process.env;
  const xdg = e.XDG_CONFIG_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(e.HOME || os.homedir(), '.config');
  return path.join(base, 'mcp-mtls', 'profiles');
}

export function profileDir(name: string, env?: NodeJS.ProcessEnv): string {
  return path.join(profilesRoot(env), assertProfileName(name));
}

/** The bundle file of a profile (it may not exist). */
export function profileBundleFile(name: string, env?: NodeJS.ProcessEnv): string {
  return path.join(profileDir(name, env), PROFILE_BUNDLE);
}

export const ProfileMetaSchema = z.strictObject({
  version: z.literal(1),
  name: z.string(),
  /** how the certificate was obtained: `login` (an identity provider) or `enroll` (a token) */
  via: z.enum(['login', 'enroll']),
  /** the CA's base URL, as given to --ca */
  ca: z.url(),
  /** SHA-256 of the pinned root's DER, lowercase hex */
  rootSha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** the identity provider's name, for `login` */
  provider: z.string().optional(),
  /** MCP server URLs this profile was configured for (client-config --profile, connect --profile) */
  servers: z.array(z.string()),
  updatedAt: z.string(),
});
export type ProfileMeta = z.infer<typeof ProfileMetaSchema>;

/** The profile's metadata; undefined when the folder is no profile (or was made by hand). */
export function readProfileMeta(dir: string): ProfileMeta | undefined {
  let text: string | undefined;
  try {
    text = readProfileFile(dir, PROFILE_META);
  } catch (e) {
    if ((e as MtlsError)?.code === 'IO_ERROR') throw e; // a symlink or a file of another user: said, not taken as "no profile"
    return undefined;
  }
  if (text === undefined) return undefined;
  const parsed = ProfileMetaSchema.safeParse(safeJson(text));
  if (!parsed.success) throw new MtlsError('BUNDLE_INVALID', `${path.join(dir, PROFILE_META)} is not a profile's metadata: ${parsed.error.issues[0]?.message}`, { hint: `sign in again (mcp-mtls login --profile ${path.basename(dir)}) to rewrite it` });
  return parsed.data;
}

/** The metadata of the profile whose bundle is `bundleFile`, when that file is a profile's bundle.yaml. */
export function profileOfBundleFile(bundleFile: string): ProfileMeta | undefined {
  if (path.basename(bundleFile) !== PROFILE_BUNDLE) return undefined;
  try {
    return readProfileMeta(path.dirname(bundleFile));
  } catch {
    return undefined;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const uidOf = (): number | undefined => (typeof process.getuid === 'function' ? process.getuid() : undefined);
const notOurs = (what: string, hint: string) => new MtlsError('IO_ERROR', what, { hint });

/**
 * The read-side check of a profile's folders (NAME, profiles, mcp-mtls): each a real folder
 * (lstat: not a symlink, which could send the read outside the config folder or to another
 * user's key), of this user, that no other user can write to (they could swap the files). Their
 * identities (dev, ino), to see that none was swapped while a file was read; undefined when the
 * profile's folder does not exist.
 */
function checkProfileFolders(dir: string): string[] | undefined {
  const uid = uidOf();
  const ids: string[] = [];
  for (let d = dir, i = 0; i < 3; d = path.dirname(d), i++) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw e;
    }
    const problem = st.isSymbolicLink() ? 'a symbolic link' : !st.isDirectory() ? 'not a folder' : uid !== undefined && st.uid !== uid ? `owned by another user (uid ${st.uid})` : uid !== undefined && (st.mode & 0o022) !== 0 ? `writable by other users (mode 0${(st.mode & 0o777).toString(8)})` : undefined;
    if (problem) throw notOurs(`${d} is ${problem}: the profile is not read through it`, `remove ${d} (mcp-mtls makes it a folder of yours, mode 0700) and sign in again (mcp-mtls login --profile ${path.basename(dir)}), or set XDG_CONFIG_HOME to a folder of your own`);
    ids.push(`${st.dev}:${st.ino}`);
  }
  return ids;
}

/**
 * Reads a file of a profile folder without following a symlink: the folders as
 * {@link checkProfileFolders} says, the file opened with O_NOFOLLOW and checked on its open
 * descriptor (a regular file of this user; with `secret`, readable by no one else: mode 0600),
 * and the folders checked again after the read. Undefined when there is no such file.
 */
function readProfileFile(dir: string, name: string, secret = false): string | undefined {
  const before = checkProfileFolders(dir);
  if (!before) return undefined;
  const file = path.join(dir, name);
  const again = `sign in again (mcp-mtls login --profile ${path.basename(dir)}) to rewrite it`;
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP' || code === 'EMLINK') throw notOurs(`${file} is a symbolic link: the profile is not read through it`, `remove it and ${again}`);
    throw e;
  }
  try {
    const st = fs.fstatSync(fd);
    const uid = uidOf();
    if (!st.isFile()) throw notOurs(`${file} is not a regular file`, `remove it and ${again}`);
    if (uid !== undefined && st.uid !== uid) throw notOurs(`${file} is owned by another user (uid ${st.uid}): the profile is not read from it`, `remove it and ${again}`);
    if (secret && uid !== undefined && (st.mode & 0o077) !== 0) throw notOurs(`${file} holds a private key and other users can read or write it (mode 0${(st.mode & 0o777).toString(8)})`, `chmod 600 ${file} (and sign in again if others may have read it: mcp-mtls login --profile ${path.basename(dir)})`);
    const text = fs.readFileSync(fd, 'utf8');
    if (checkProfileFolders(dir)?.join() !== before.join()) throw notOurs(`${dir} changed while it was read`, 'try again; if it happens again, check who else can write to your config folder');
    return text;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The profile name when `file` (absolute) is the bundle.yaml of a profile of this user's config
 * folder (what client-config --profile writes into an app's config), else undefined: such a path
 * is read with the profile's checks too.
 */
export function profileNameOfBundleFile(file: string, env?: NodeJS.ProcessEnv): string | undefined {
  if (path.basename(file) !== PROFILE_BUNDLE || path.dirname(path.dirname(file)) !== profilesRoot(env)) return undefined;
  const name = path.basename(path.dirname(file));
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name) ? name : undefined;
}

/**
 * The text of a profile's bundle.yaml, read as {@link readProfileFile} says (no symlink, this
 * user's, 0600); undefined when the profile has none. For loadBundle({ profile }).
 */
export function readProfileBundleText(name: string, env?: NodeJS.ProcessEnv): string | undefined {
  return readProfileFile(profileDir(name, env), PROFILE_BUNDLE, true);
}

/**
 * Creates the folders 0700 (the profile's and its parents under the config folder). Each of
 * the three (NAME, profiles, mcp-mtls) must be a real folder of this user: a symlink there
 * (planted where the config folder is shared, e.g. an XDG_CONFIG_HOME under /tmp) would send
 * the private key elsewhere and chmod whatever it points at; a folder of another user is one
 * they can read or swap the key in.
 */
function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  for (let d = dir, i = 0; i < 3; d = path.dirname(d), i++) {
    const st = fs.lstatSync(d);
    if (st.isSymbolicLink() || !st.isDirectory() || (uid !== undefined && st.uid !== uid)) {
      throw new MtlsError('IO_ERROR', `${d} is ${st.isSymbolicLink() ? 'a symbolic link' : !st.isDirectory() ? 'not a folder' : `owned by another user (uid ${st.uid})`}: the profile's private key is not written there`, {
        hint: `remove ${d} (it was not made by mcp-mtls for you), or set XDG_CONFIG_HOME to a folder of your own`,
      });
    }
    fs.chmodSync(d, 0o700); // NAME, profiles, mcp-mtls
  }
}

/** Writes (or replaces) a profile's bundle and metadata, each atomically, 0600. */
export function writeProfile(dir: string, bundleText: string, meta: ProfileMeta): string {
  ensurePrivateDir(dir);
  const bundleFile = path.join(dir, PROFILE_BUNDLE);
  writeFilesAtomic([
    { file: bundleFile, data: bundleText, mode: 0o600 },
    { file: path.join(dir, PROFILE_META), data: `${JSON.stringify(meta, null, 2)}\n`, mode: 0o600 },
  ]);
  return bundleFile;
}

/** Adds a server URL to the profile's list (for whoami); a profile without metadata is left alone. */
export function noteProfileServer(dir: string, url: string): void {
  const meta = readProfileMeta(dir);
  if (!meta || meta.servers.includes(url)) return;
  writeFilesAtomic([{ file: path.join(dir, PROFILE_META), data: `${JSON.stringify({ ...meta, servers: [...meta.servers, url] }, null, 2)}\n`, mode: 0o600 }]);
}

/** Deletes a profile: the key first (bundle.yaml), then the rest; never through a symlink (nor in another user's folder). */
export function deleteProfile(dir: string): void {
  checkProfileFolders(dir);
  fs.rmSync(path.join(dir, PROFILE_BUNDLE), { force: true });
  fs.rmSync(dir, { recursive: true, force: true });
}

/** What a profile holds, read without the validity checks of loadBundle (an expired certificate too): for whoami, logout and signing in again. */
export interface ProfileContents {
  readonly dir: string;
  readonly bundleFile: string;
  readonly meta: ProfileMeta | undefined;
  readonly chain: Buffer[];
  /** the pinned root(s) */
  readonly ca: Buffer[];
  readonly renewUrl?: string;
  readonly url?: string;
  readonly identity?: Identity;
  readonly notAfter: Date;
}

export function readProfileUnchecked(name: string, env?: NodeJS.ProcessEnv): ProfileContents {
  const dir = profileDir(name, env);
  const bundleFile = path.join(dir, PROFILE_BUNDLE);
  const text = readProfileFile(dir, PROFILE_BUNDLE, true);
  if (text === undefined) throw new MtlsError('FILE_NOT_FOUND', `there is no profile "${name}" (no ${bundleFile})`, { hint: `sign in: \`mcp-mtls login --ca https://CA --profile ${name}\`` });
  const p = parseBundleProfile(text, bundleFile);
  const chain = readCertificates(Buffer.from(p.certificate));
  let identity: Identity | undefined;
  try {
    identity = decodeIdentity(chain[0]!);
  } catch {
    identity = undefined;
  }
  const leaf = new crypto.X509Certificate(chain[0]!);
  return { dir, bundleFile, meta: readProfileMeta(dir), chain, ca: readCertificates(Buffer.from(p.ca)), ...(p.renewUrl ? { renewUrl: p.renewUrl } : {}), ...(p.url ? { url: p.url } : {}), ...(identity ? { identity } : {}), notAfter: new Date(leaf.validTo) };
}
