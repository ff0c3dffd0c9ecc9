/**
 * The SFTP session against real OpenSSH servers on loopback: a restricted storage-box login
 * (internal-sftp, chroot, no forwarding, no TTY) and the external sftp-server. Pieces are
 * pipelined over several channels and land byte for byte in the file on the server; flushes
 * send fsync@openssh.com (seen in sftp-server's own log); a server that lacks it is refused
 * unless remote flushes are turned off; pieces are as large as limits@openssh.com allows,
 * else 32 KiB; a server that allows fewer channels is used with what it allows.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isNbdcryptError } from '../../src/errors.js';
import { openSftpSession, type SftpOpenOptions } from '../../src/sftp/sftp-open.js';
import type { SftpSession, SftpSessionRequest } from '../../src/sftp/sftp-session.js';
import { SshTransport } from '../../src/transport/ssh.js';
import { startSshd, type SshdPeer } from '../../peers/sshd.js';
import { sftpWithoutFsync } from '../../peers/sftp-without-fsync.js';
import { scratchDir } from '../../peers/tools.js';
import { sftpTransport } from './sftp-transport.js';

const MiB = 1024 * 1024;

function request(s: SftpSession, kind: SftpSessionRequest['kind'], offset: number, length: number, data?: Buffer, fua = false): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => s.submit({ kind, offset, length, data, fua, done: (err, payload) => (err ? reject(err) : resolve(payload)) }));
}

async function open(sshd: SshdPeer, t: SshTransport, name: string, o: Partial<SftpOpenOptions> = {}): Promise<SftpSession> {
  return openSftpSession({ open: () => t.openSftp(), refused: SshTransport.isChannelRefusal }, { name, path: `${sshd.sftpData.remote}/${name}`, channels: 4, readOnly: false, remoteFlush: true, ...o });
}

async function roundTrip(s: SftpSession, file: string): Promise<void> {
  const data = randomBytes(6 * MiB + 12345);
  // Unaligned, several pieces each, all at once.
  await Promise.all([0, 1, 2].map((i) => request(s, 'write', 777 + i * 2 * MiB, 2 * MiB, data.subarray(i * 2 * MiB, (i + 1) * 2 * MiB))));
  await request(s, 'write', 777 + 6 * MiB, 12345, data.subarray(6 * MiB), true);
  await request(s, 'flush', 0, 0);
  const back = await request(s, 'read', 777, data.length);
  assert.ok(back!.equals(data), 'reads return what was written');
  assert.ok(readFileSync(file).subarray(777, 777 + data.length).equals(data), 'the file on the server holds exactly what was written');
}

describe('SFTP session on a restricted storage login', () => {
  let sshd: SshdPeer;
  let t: SshTransport;
  before(async () => {
    delete process.env.SSH_AUTH_SOCK;
    sshd = await startSshd({ restricted: true });
    t = sftpTransport(sshd);
  });
  after(async () => {
    await t?.close();
    await sshd?.stop();
  });

  it('pipelines reads and writes over several channels', async () => {
    const file = join(sshd.sftpData.local, 'disk.img');
    writeFileSync(file, Buffer.alloc(16 * MiB));
    const s = await open(sshd, t, 'disk.img');
    assert.equal(s.channels, 4);
    assert.equal(s.pieceSize, 258048, "limits@openssh.com: OpenSSH's 261120 bytes, in whole pages");
    assert.deepEqual(s.facts, { size: 16 * MiB, caps: { flush: true, fua: true, trim: false, zeroes: false, multiConn: true, readOnly: false } });
    await roundTrip(s, file);
    s.close();
  });

  it('the account cannot forward ports, and does not need to', async () => {
    await assert.rejects(t.open(), (e: unknown) => isNbdcryptError(e, 'ECONNECT'));
  });

  it('creates a sparse file of the size asked for, and refuses another size', async () => {
    const s = await open(sshd, t, 'new.img', { createSize: 1024 * MiB });
    assert.equal(s.facts.size, 1024 * MiB);
    assert.equal(statSync(join(sshd.sftpData.local, 'new.img')).blocks, 0, 'sparse: no data written');
    s.close();
    await assert.rejects(open(sshd, t, 'new.img', { createSize: 512 * MiB }), (e: unknown) => isNbdcryptError(e, 'EEXIST') && /already exists with 1073741824 bytes/.test(e.message));
    const again = await open(sshd, t, 'new.img', { createSize: 512 * MiB, resize: true });
    assert.equal(again.facts.size, 512 * MiB);
    again.close();
  });

  it('names a missing file, a missing directory and a directory', async () => {
    await assert.rejects(open(sshd, t, 'absent.img'), (e: unknown) => isNbdcryptError(e, 'ENOEXPORT') && /no such file/.test(e.message));
    await assert.rejects(openSftpSession({ open: () => t.openSftp(), refused: SshTransport.isChannelRefusal }, { name: 'x', path: '/nowhere/disk.img', channels: 1, readOnly: false, remoteFlush: true }), (e: unknown) => isNbdcryptError(e, 'ENOEXPORT') && /no directory \/nowhere/.test(e.message));
    await assert.rejects(openSftpSession({ open: () => t.openSftp(), refused: SshTransport.isChannelRefusal }, { name: 'x', path: sshd.sftpData.remote, channels: 1, readOnly: false, remoteFlush: true }), (e: unknown) => isNbdcryptError(e, 'ENOEXPORT') && /is a directory/.test(e.message));
  });
});

describe('SFTP session on a server that allows two channels per connection', () => {
  let sshd: SshdPeer;
  let t: SshTransport;
  before(async () => {
    delete process.env.SSH_AUTH_SOCK;
    sshd = await startSshd({ restricted: true, extraConfig: ['MaxSessions 2'] });
    t = sftpTransport(sshd);
  });
  after(async () => {
    await t?.close();
    await sshd?.stop();
  });

  it('uses the two it allows instead of the four asked for', async () => {
    const file = join(sshd.sftpData.local, 'disk.img');
    writeFileSync(file, Buffer.alloc(16 * MiB));
    const s = await open(sshd, t, 'disk.img');
    assert.equal(s.channels, 2);
    await roundTrip(s, file);
    s.close();
  });
});

describe('SFTP session on the external sftp-server', () => {
  let sshd: SshdPeer;
  let t: SshTransport;
  const logDir = scratchDir('nbdcrypt-sftp-server-log-');
  const serverLog = join(logDir.path, 'sftp-server.log');
  before(async () => {
    delete process.env.SSH_AUTH_SOCK;
    // sshd runs a subsystem command through the shell: sftp-server logs each request it serves.
    sshd = await startSshd({ sftpServer: `/usr/lib/openssh/sftp-server -e -l DEBUG3 2>>${serverLog}` });
    t = sftpTransport(sshd);
  });
  after(async () => {
    await t?.close();
    await sshd?.stop();
    logDir.remove();
  });

  it('round-trips data and sends fsync@openssh.com on a flush', async () => {
    const file = join(sshd.sftpData.local, 'disk.img');
    writeFileSync(file, Buffer.alloc(16 * MiB));
    const s = await open(sshd, t, 'disk.img');
    assert.equal(s.channels, 4);
    await roundTrip(s, file);
    s.close();
    assert.match(readFileSync(serverLog, 'utf8'), /fsync/, 'the server saw fsync requests');
  });
});

describe('SFTP session on a server without fsync@openssh.com and limits@openssh.com', () => {
  let sshd: SshdPeer;
  let t: SshTransport;
  before(async () => {
    delete process.env.SSH_AUTH_SOCK;
    sshd = await startSshd({ sftpServer: sftpWithoutFsync() });
    t = sftpTransport(sshd);
  });
  after(async () => {
    await t?.close();
    await sshd?.stop();
  });

  it('is refused for writing unless remote flushes are turned off, then offers no FLUSH', async () => {
    writeFileSync(join(sshd.sftpData.local, 'disk.img'), Buffer.alloc(16 * MiB));
    await assert.rejects(open(sshd, t, 'disk.img'), (e: unknown) => isNbdcryptError(e, 'ENOTSUP') && /--no-remote-flush/.test(e.message));
    const s = await open(sshd, t, 'disk.img', { remoteFlush: false });
    assert.equal(s.pieceSize, 32768, 'no limits@openssh.com either: 32 KiB pieces');
    await roundTrip(s, join(sshd.sftpData.local, 'disk.img'));
    assert.equal(s.facts.caps.flush, false);
    assert.equal(s.facts.caps.fua, false);
    s.close();
    const ro = await open(sshd, t, 'disk.img', { readOnly: true });
    assert.equal(ro.facts.caps.readOnly, true);
    ro.close();
  });
});
