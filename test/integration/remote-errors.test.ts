/**
 * Host-key checking and failure messages against a real sshd and nbd-server: an unknown
 * key is refused with its SHA256 fingerprint (as ssh-keygen prints it) and the line to add,
 * accept-new records it (ssh-keygen -F finds it), hashed entries work, a changed or revoked
 * key is refused; wrong user or key → EAUTH, missing export → ENOEXPORT naming it, a closed
 * port → ECONNECT within the connect timeout.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isNbdcryptError, type ErrorCode } from '../../src/errors.js';
import { openTarget, type TargetOptions } from '../../src/backend/open-target.js';
import { startNbdServer, type NbdServerPeer } from '../../peers/nbd-server.js';
import { keygen, startSshd, type SshdPeer } from '../../peers/sshd.js';
import { freePort, requireTool, run } from '../../peers/tools.js';

describe('ssh host keys, authentication and error messages', () => {
  let sshd: SshdPeer;
  let nbd: NbdServerPeer;
  let n = 0;
  const kh = (): string => join(sshd.dir, `known_hosts.${++n}`);
  const uri = (user = sshd.user, exp = nbd.exportName, scheme = 'ssh'): string => `${scheme}://${user}@${sshd.host}:${sshd.port}/${exp}?nbd=127.0.0.1:${nbd.port}`;
  const opts = (knownHostsPath: string, more: TargetOptions = {}): TargetOptions => ({ knownHostsPath, identity: [sshd.userKey], sshConfigPath: '/dev/null', connections: 1, connectTimeout: 5, ...more });
  const rejectsWith = async (p: Promise<unknown>, code: ErrorCode, ...patterns: (RegExp | string)[]): Promise<string> => {
    let msg = '';
    await assert.rejects(p, (e) => {
      assert.ok(isNbdcryptError(e, code), `expected ${code}, got ${String(e)}`);
      msg = (e as Error).message;
      for (const pat of patterns) {
        if (typeof pat === 'string') assert.ok(msg.includes(pat), `message lacks '${pat}': ${msg}`);
        else assert.match(msg, pat);
      }
      return true;
    });
    return msg;
  };

  before(async () => {
    delete process.env.SSH_AUTH_SOCK;
    sshd = await startSshd();
    nbd = await startNbdServer({ size: 1 << 20 });
  });
  after(async () => {
    await sshd?.stop();
    await nbd?.stop();
  });

  it('refuses an unknown host key, printing the fingerprint and the line to add', async () => {
    const path = kh();
    const fp = run(requireTool('ssh-keygen', 'openssh-client'), ['-l', '-E', 'sha256', '-f', join(sshd.dir, 'host_ed25519.pub')]).stdout.split(' ')[1]!;
    assert.match(fp, /^SHA256:[A-Za-z0-9+/]{43}$/);
    await rejectsWith(openTarget(uri(), opts(path)), 'EHOSTKEY', 'unknown', fp, sshd.knownHostsLine);
  });

  it('accept-new records the key the way OpenSSH finds it, then connects without it', async () => {
    const path = kh();
    const dev = await openTarget(uri(), opts(path, { acceptNewHostKey: true }));
    await dev.close();
    assert.equal(readFileSync(path, 'utf8'), `${sshd.knownHostsLine}\n`);
    const found = run('ssh-keygen', ['-F', `[${sshd.host}]:${sshd.port}`, '-f', path]).stdout;
    assert.ok(found.includes(sshd.hostKey));
    const again = await openTarget(uri(), opts(path));
    await again.close();
  });

  it('accepts hashed known_hosts entries (ssh-keygen -H)', async () => {
    const path = kh();
    writeFileSync(path, `# comment\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEn0cn8c0sfqLgIGlNhf9dnLkbUU8LYxVaTcjA5Hh1bG\n${sshd.knownHostsLine}\n`);
    run('ssh-keygen', ['-H', '-f', path]);
    assert.ok(!readFileSync(path, 'utf8').includes('127.0.0.1'), 'entries are hashed');
    const dev = await openTarget(uri(), opts(path));
    await dev.close();
  });

  it('refuses a changed host key even with accept-new', async () => {
    const path = kh();
    const other = keygen(join(sshd.dir, `other_${n}`)).split(' ').slice(0, 2).join(' ');
    writeFileSync(path, `[${sshd.host}]:${sshd.port} ${other}\n`);
    await rejectsWith(openTarget(uri(), opts(path, { acceptNewHostKey: true })), 'EHOSTKEY', 'CHANGED', sshd.knownHostsLine);
    assert.equal(readFileSync(path, 'utf8'), `[${sshd.host}]:${sshd.port} ${other}\n`, 'known_hosts untouched');
  });

  it('refuses a @revoked host key', async () => {
    const path = kh();
    writeFileSync(path, `@revoked * ${sshd.hostKey}\n${sshd.knownHostsLine}\n`);
    await rejectsWith(openTarget(uri(), opts(path)), 'EHOSTKEY', 'revoked');
  });

  it('ssh+cmd:// (OpenSSH) refuses an unknown host key too', async () => {
    await rejectsWith(openTarget(uri(sshd.user, nbd.exportName, 'ssh+cmd'), opts(kh())), 'EHOSTKEY');
  });

  it('a wrong user gives a clear authentication error', async () => {
    const path = kh();
    writeFileSync(path, `${sshd.knownHostsLine}\n`);
    await rejectsWith(openTarget(uri('no-such-user'), opts(path)), 'EAUTH', 'no-such-user', 'authentication');
  });

  it('a wrong key gives a clear authentication error', async () => {
    const path = kh();
    writeFileSync(path, `${sshd.knownHostsLine}\n`);
    const wrongKey = join(sshd.dir, `wrong_${n}`);
    keygen(wrongKey);
    await rejectsWith(openTarget(uri(), opts(path, { identity: [wrongKey] })), 'EAUTH', wrongKey);
  });

  it('a missing export is named (over ssh and over tcp)', async () => {
    const path = kh();
    writeFileSync(path, `${sshd.knownHostsLine}\n`);
    await rejectsWith(openTarget(uri(sshd.user, 'no-such-export'), opts(path)), 'ENOEXPORT', "'no-such-export'");
    await rejectsWith(openTarget(`nbd://127.0.0.1:${nbd.port}/other-missing`), 'ENOEXPORT', "'other-missing'");
  });

  it('an unreachable host fails with ECONNECT within the connect timeout', async () => {
    const port = await freePort();
    const t0 = Date.now();
    await rejectsWith(openTarget(`ssh://${sshd.user}@127.0.0.1:${port}/disk`, opts(kh(), { connectTimeout: 3 })), 'ECONNECT', `127.0.0.1:${port}`);
    assert.ok(Date.now() - t0 < 3500, 'within the connect timeout');
  });
});
