/**
 * The read side of profiles follows no symlink and trusts no file of another user: a symlink at
 * the profile's folder, at the profiles folder or at bundle.yaml (pointing outside the config
 * folder, or at another user's key), a bundle.yaml that others can read, or one owned by
 * another user, is refused by loadBundle({ profile }), readProfileUnchecked (whoami, logout,
 * login again) and deleteProfile, with an error naming the file and what to do. A profile as
 * login writes it loads.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadBundle } from '../../src/bundle/load.js';
import { deleteProfile, profileDir, readProfileUnchecked, writeProfile, type ProfileMeta } from '../../src/bundle/profile-dir.js';
import { formatBundleProfile } from '../../src/bundle/profile.js';
import { MtlsError } from '../../src/errors.js';
import { clientCreds, makeCa } from '../support/ca-serve.js';
import { tmpDir } from '../support/cli.js';

const meta: ProfileMeta = { version: 1, name: 'p', via: 'login', ca: 'https://ca.test/', rootSha256: 'a'.repeat(64), servers: [], updatedAt: new Date().toISOString() };
const isRoot = process.getuid?.() === 0;

describe('profile folder safety when reading', () => {
  const tmp = tmpDir('profile-read-');
  let bundleText: string;
  let n = 0;
  before(async () => {
    const t = makeCa();
    const creds = await clientCreds(t.ca, { id: 'alice' });
    bundleText = formatBundleProfile({ kind: 'mcp-mtls/bundle', version: 1, certificate: creds.cert, key: creds.key, ca: t.rootPem });
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** a fresh config folder with profile p written as login writes it */
  const fresh = () => {
    const env = { XDG_CONFIG_HOME: path.join(tmp, `cfg${++n}`) };
    const dir = profileDir('p', env);
    const file = writeProfile(dir, bundleText, meta);
    return { env, dir, file };
  };
  /** another, valid, profile folder outside the config folder (the symlink's target) */
  const elsewhere = () => {
    const dir = path.join(tmp, `elsewhere${++n}`, 'p');
    writeProfile(dir, bundleText, meta);
    return dir;
  };
  const refusedAs = (re: RegExp) => (e: unknown) => e instanceof MtlsError && e.code === 'IO_ERROR' && re.test(e.message) && typeof e.hint === 'string' && e.hint.length > 0;
  const allRefuse = async (env: NodeJS.ProcessEnv, re: RegExp) => {
    await assert.rejects(loadBundle({ profile: 'p', env }), refusedAs(re), 'loadBundle');
    assert.throws(() => readProfileUnchecked('p', env), refusedAs(re), 'readProfileUnchecked');
  };

  it('a profile as login writes it loads', async () => {
    const { env } = fresh();
    const b = await loadBundle({ profile: 'p', env });
    assert.equal(b.identity?.principal, 'spiffe://acme.test/user/alice');
    assert.equal(readProfileUnchecked('p', env).identity?.principal, 'spiffe://acme.test/user/alice');
  });

  it("a symlink at the profile's folder is refused (it points outside the config folder)", async () => {
    const { env, dir } = fresh();
    fs.rmSync(dir, { recursive: true });
    fs.symlinkSync(elsewhere(), dir);
    await allRefuse(env, /symbolic link/);
  });

  it('a symlink at the profiles folder is refused', async () => {
    const { env, dir } = fresh();
    const profiles = path.dirname(dir);
    fs.rmSync(profiles, { recursive: true });
    fs.symlinkSync(path.dirname(elsewhere()), profiles);
    await allRefuse(env, /symbolic link/);
  });

  it("a symlink at bundle.yaml (another user's key, or any file) is refused", async () => {
    const { env, file } = fresh();
    const target = path.join(elsewhere(), 'bundle.yaml');
    fs.rmSync(file);
    fs.symlinkSync(target, file);
    await allRefuse(env, /symbolic link/);
  });

  it("the profile's bundle.yaml named by its path (as client-config --profile writes it into an app's config) is checked too", async () => {
    const { env, file } = fresh();
    const target = path.join(elsewhere(), 'bundle.yaml');
    fs.rmSync(file);
    fs.symlinkSync(target, file);
    const saved = process.env.XDG_CONFIG_HOME;
    process.env.XDG_CONFIG_HOME = env.XDG_CONFIG_HOME; // a path names no env: the process's config folder
    try {
      await assert.rejects(loadBundle(file), refusedAs(/symbolic link/));
      assert.equal((await loadBundle(target)).identity?.principal, 'spiffe://acme.test/user/alice', 'a bundle elsewhere loads as any bundle file');
    } finally {
      if (saved === undefined) delete process.env.XDG_CONFIG_HOME;
      else process.env.XDG_CONFIG_HOME = saved;
    }
  });

  it('deleteProfile (logout) removes nothing through a symlinked profile folder', () => {
    const { dir } = fresh();
    const target = elsewhere();
    fs.rmSync(dir, { recursive: true });
    fs.symlinkSync(target, dir);
    assert.throws(() => deleteProfile(dir), refusedAs(/symbolic link/));
    assert.ok(fs.existsSync(path.join(target, 'bundle.yaml')), "the symlink's target kept its key");
  });

  it('a bundle.yaml other users can read is refused, with chmod as the next step', { skip: process.platform === 'win32' && 'POSIX modes' }, async () => {
    const { env, file } = fresh();
    fs.chmodSync(file, 0o644);
    await assert.rejects(loadBundle({ profile: 'p', env }), (e: unknown) => refusedAs(/mode 0644/)(e) && (e as MtlsError).hint!.includes(`chmod 600 ${file}`));
  });

  it('a bundle.yaml or profile folder owned by another user is refused', { skip: !isRoot && 'needs root to chown' }, async () => {
    const a = fresh();
    fs.chownSync(a.file, 65534, 65534);
    await allRefuse(a.env, /owned by another user \(uid 65534\)/);
    const b = fresh();
    fs.chownSync(b.dir, 65534, 65534);
    await allRefuse(b.env, /owned by another user \(uid 65534\)/);
  });
});
