/**
 * The LUKS2 commands on a remote TARGET through the CLI (format is done by the setup): key
 * add/remove, dump and header backup over ssh:// with the shared remote options, judged by
 * cryptsetup on the remote's file; an unknown host key is refused with the line to add, and
 * --accept-new-host-key records it.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { luksDump, testPassphrase } from '../../peers/cryptsetup.js';
import { nbdcryptBin } from '../../peers/nbdcrypt.js';
import { run } from '../../peers/tools.js';
import { remoteVolume, type RemoteVolume } from '../../peers/remote-volume.js';
import { MiB } from './serve-remote.js';

describe('key, dump and header commands on an ssh:// target', { timeout: 120_000 }, () => {
  let vol: RemoteVolume;
  const cli = (args: string[]) => run(process.execPath, [nbdcryptBin, ...args], { env: vol.env, allowFail: true, timeoutMs: 60_000 });
  before(async () => {
    vol = await remoteVolume(64 * MiB);
  });
  after(async () => {
    await vol?.stop();
  });

  it('adds and removes a keyslot over ssh; cryptsetup agrees', () => {
    const second = join(vol.dir, 'second');
    writeFileSync(second, 'a second passphrase');
    let r = cli(['key', 'add', vol.uri, '--key-file', vol.keyFile, '--new-key-file', second, '--pbkdf-memory', '16384', '--pbkdf-force-iterations', '4', ...vol.sshArgs]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(testPassphrase(vol.nbd.file, 'a second passphrase'), 1);
    r = cli(['dump', vol.uri, ...vol.sshArgs]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\s+1: luks2$/m);
    r = cli(['header', 'backup', vol.uri, join(vol.dir, 'hdr'), ...vol.sshArgs]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(luksDump(join(vol.dir, 'hdr')), /^\s+1: luks2$/m);
    r = cli(['key', 'remove', vol.uri, '--key-file', second, ...vol.sshArgs]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(testPassphrase(vol.nbd.file, 'a second passphrase'), null);
    assert.equal(testPassphrase(vol.nbd.file, readFileSync(vol.keyFile)), 0);
  });

  it('refuses an unknown host key (exit 6, prints the line); --accept-new-host-key records it', () => {
    const kh = join(vol.dir, 'empty_known_hosts');
    writeFileSync(kh, '');
    const ssh = ['--known-hosts', kh, '--identity', vol.sshd.userKey];
    let r = cli(['dump', vol.uri, ...ssh]);
    assert.equal(r.status, 6, r.stderr);
    assert.ok(r.stderr.includes(vol.sshd.knownHostsLine), r.stderr);
    r = cli(['dump', vol.uri, ...ssh, '--accept-new-host-key']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(kh, 'utf8').includes(vol.sshd.knownHostsLine));
    assert.equal(cli(['dump', vol.uri, ...ssh]).status, 0, 'recorded key accepted without the flag');
  });
});
