/**
 * The SFTP client against OpenSSH's sftp-server through a real sshd: every request type
 * (open, stat, fstat, fsetstat, read, write, fsync, remove, limits), each checked against
 * the file on disk, and the server's status codes passed on as `code`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SftpClient } from '../../src/sftp/sftp-client.js';
import { FX, statusOf } from '../../src/sftp/sftp-status.js';
import { PFLAG, type FileAttrs } from '../../src/sftp/sftp-wire.js';
import type { SshTransport } from '../../src/transport/ssh.js';
import { startSshd, type SshdPeer } from '../../peers/sshd.js';
import { sftpTransport } from './sftp-transport.js';

const call = <T>(f: (cb: (err: Error | undefined, v: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v))));
const done = (f: (cb: (err: Error | undefined) => void) => void): Promise<void> => call<void>((cb) => f((err) => cb(err, undefined)));

describe('SFTP client against OpenSSH sftp-server', () => {
  let sshd: SshdPeer;
  let t: SshTransport;
  let sftp: SftpClient;
  before(async () => {
    delete process.env.SSH_AUTH_SOCK;
    sshd = await startSshd({ sftpServer: '/usr/lib/openssh/sftp-server' });
    t = sftpTransport(sshd);
    sftp = await SftpClient.start(await t.openSftp());
  });
  after(async () => {
    sftp?.end();
    await t?.close();
    await sshd?.stop();
  });

  it('reads the server limits and extensions', () => {
    assert.ok(sftp.extensions.has('fsync@openssh.com'));
    assert.equal(sftp.limits?.maxPacketLength, 256 * 1024);
    assert.equal(sftp.limits?.maxReadLength, 256 * 1024 - 1024);
    assert.equal(sftp.limits?.maxWriteLength, 256 * 1024 - 1024);
  });

  it('creates, writes, fsyncs, sizes, reads, stats, closes and removes a file as the disk shows', async () => {
    const file = join(sshd.dir, 'client.img');
    const h = await call<Buffer>((cb) => sftp.open(file, PFLAG.READ | PFLAG.WRITE | PFLAG.CREAT | PFLAG.EXCL, cb));
    const data = randomBytes(8 * 200 * 1024);
    // Pipelined, out of order, each payload a view of `data`.
    await Promise.all([7, 3, 0, 5, 1, 6, 2, 4].map((i) => done((cb) => sftp.write(h, 4096 + i * 200 * 1024, data, i * 200 * 1024, 200 * 1024, cb))));
    await done((cb) => sftp.fsync(h, cb));
    assert.ok(readFileSync(file).subarray(4096).equals(data), 'the file on disk holds what was written');
    assert.equal((await call<FileAttrs>((cb) => sftp.fstat(h, cb))).size, 4096 + data.length);

    await done((cb) => sftp.setSize(h, 8 * 1024 * 1024 * 1024, cb));
    assert.equal(statSync(file).size, 8 * 1024 * 1024 * 1024, 'FSETSTAT grew the file (64-bit size)');
    const st = await call<FileAttrs>((cb) => sftp.stat(file, cb));
    assert.equal(st.size, 8 * 1024 * 1024 * 1024);
    assert.equal(st.mode, statSync(file).mode);

    const into = Buffer.alloc(data.length + 10, 0xee);
    const pieces = Array.from({ length: 8 }, (_, i) => call<number>((cb) => sftp.read(h, 4096 + i * 200 * 1024, into, 5 + i * 200 * 1024, 200 * 1024, cb)));
    assert.deepEqual(await Promise.all(pieces), Array(8).fill(200 * 1024));
    assert.ok(into.subarray(5, 5 + data.length).equals(data), 'reads land at their offsets');
    assert.ok(into.subarray(0, 5).every((b) => b === 0xee) && into.subarray(5 + data.length).every((b) => b === 0xee));
    assert.equal(await call<number>((cb) => sftp.read(h, 8 * 1024 * 1024 * 1024, into, 0, 10, cb)), 0, 'EOF is a read of 0 bytes');
    const big = Buffer.alloc(300 * 1024);
    assert.equal(await call<number>((cb) => sftp.read(h, 0, big, 0, big.length, cb)), 256 * 1024 - 1024, 'a read beyond max-read-length is answered short');

    await assert.rejects(call<Buffer>((cb) => sftp.open(file, PFLAG.WRITE | PFLAG.CREAT | PFLAG.EXCL, cb)), (e: unknown) => statusOf(e) === FX.FAILURE, 'EXCL on an existing file');
    await done((cb) => sftp.close(h, cb));
    await assert.rejects(done((cb) => sftp.fsync(h, cb)), (e: unknown) => statusOf(e) !== undefined, 'a closed handle is answered with a status');
    await done((cb) => sftp.remove(file, cb));
    assert.ok(!existsSync(file), 'REMOVE removed it');
    await assert.rejects(done((cb) => sftp.remove(file, cb)), (e: unknown) => statusOf(e) === FX.NO_SUCH_FILE);
    await assert.rejects(call<FileAttrs>((cb) => sftp.stat(file, cb)), (e: unknown) => statusOf(e) === FX.NO_SUCH_FILE);
  });

  it('opens an existing file read-only and refuses writes on that handle', async () => {
    const file = join(sshd.dir, 'ro.img');
    writeFileSync(file, 'abc');
    const h = await call<Buffer>((cb) => sftp.open(file, PFLAG.READ, cb));
    const into = Buffer.alloc(10);
    assert.equal(await call<number>((cb) => sftp.read(h, 0, into, 0, 10, cb)), 3);
    assert.equal(into.subarray(0, 3).toString(), 'abc');
    await assert.rejects(done((cb) => sftp.write(h, 0, Buffer.from('x'), 0, 1, cb)), (e: unknown) => statusOf(e) !== undefined);
    assert.equal(readFileSync(file, 'utf8'), 'abc');
    await done((cb) => sftp.close(h, cb));
  });
});
