/**
 * A profile's private key is written only into folders of this user: a symlink planted at the
 * profile's place (a config folder shared with others) or a folder another user made is refused,
 * and nothing is written through it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { profileDir, writeProfile, type ProfileMeta } from '../../src/bundle/profile-dir.js';
import { MtlsError } from '../../src/errors.js';

const meta: ProfileMeta = { version: 1, name: 'p', via: 'login', ca: 'https://ca.test/', rootSha256: 'a'.repeat(64), servers: [], updatedAt: new Date().toISOString() };

describe('profile folder safety', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'r3-profile-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('a symlink at the profile\'s place is refused; the folder it points at gets nothing', () => {
    const env = { XDG_CONFIG_HOME: path.join(tmp, 'cfg1') };
    const elsewhere = fs.mkdtempSync(path.join(tmp, 'elsewhere-'));
    fs.chmodSync(elsewhere, 0o755);
    const dir = profileDir('p', env);
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.symlinkSync(elsewhere, dir);
    assert.throws(() => writeProfile(dir, 'bundle', meta), (e: MtlsError) => e.code === 'IO_ERROR' && /symbolic link/.test(e.message));
    assert.deepEqual(fs.readdirSync(elsewhere), []);
    assert.equal(fs.statSync(elsewhere).mode & 0o777, 0o755);
  });

  it('a symlink for the profiles folder is refused too', () => {
    const env = { XDG_CONFIG_HOME: path.join(tmp, 'cfg2') };
    const elsewhere = fs.mkdtempSync(path.join(tmp, 'elsewhere-'));
    const dir = profileDir('p', env);
    fs.mkdirSync(path.dirname(path.dirname(dir)), { recursive: true });
    fs.symlinkSync(elsewhere, path.dirname(dir));
    assert.throws(() => writeProfile(dir, 'bundle', meta), /symbolic link/);
    assert.deepEqual(fs.readdirSync(path.join(elsewhere, 'p')), []);
  });

  it('a folder owned by another user is refused', { skip: process.getuid?.() !== 0 && 'needs root to chown' }, () => {
    const env = { XDG_CONFIG_HOME: path.join(tmp, 'cfg3') };
    const dir = profileDir('p', env);
    fs.mkdirSync(dir, { recursive: true, mode: 0o777 });
    fs.chownSync(dir, 65534, 65534);
    assert.throws(() => writeProfile(dir, 'bundle', meta), /owned by another user \(uid 65534\)/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('a fresh profile is written 0700 / 0600', () => {
    const env = { XDG_CONFIG_HOME: path.join(tmp, 'cfg4') };
    const dir = profileDir('p', env);
    const file = writeProfile(dir, 'bundle', meta);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });
});
