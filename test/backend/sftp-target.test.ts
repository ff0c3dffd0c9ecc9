/**
 * openTarget('sftp://...') as a BlockDevice against a real restricted sshd: a write the
 * server fails because its disk is full (SSH_FX_FAILURE from a small tmpfs) fails that one
 * request with EIO naming the likely cause, while the link stays up and other requests
 * succeed; a read-only open takes no lock, a second writer in the same process shares the
 * first one's; --connections sets the SFTP channels; reads and the replay log's copies use
 * the command's buffer pool, and the SSH transport reports its transient bytes, as for ssh://.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openTarget } from '../../src/backend/open-target.js';
import { BufferPool } from '../../src/block/buffer-pool.js';
import { isNbdcryptError } from '../../src/errors.js';
import type { ResilientDevice } from '../../src/resilient/resilient-device.js';
import type { TargetOptions } from '../../src/backend/open-target.js';
import { startSshd, type SshdPeer } from '../../peers/sshd.js';
import { run } from '../../peers/tools.js';

const MiB = 1024 * 1024;

describe('sftp:// targets as block devices', () => {
  let sshd: SshdPeer;
  let knownHosts: string;
  let full: string;
  before(async () => {
    delete process.env.SSH_AUTH_SOCK;
    sshd = await startSshd({ restricted: true });
    knownHosts = join(sshd.dir, 'known_hosts');
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
    full = join(sshd.sftpData.local, 'full');
    mkdirSync(full);
    run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'nbdcrypt-sftp-full', full]);
  });
  after(async () => {
    if (full) run('umount', [full], { allowFail: true });
    await sshd?.stop();
  });

  const open = (path: string, o: { readOnly?: boolean; connections?: number; createSize?: number; io?: TargetOptions['io'] } = {}) =>
    openTarget(`sftp://${sshd.user}@${sshd.host}:${sshd.port}${sshd.sftpData.remote}/${path}`, { knownHostsPath: knownHosts, identity: [sshd.userKey], sshConfigPath: '/dev/null', ...o }) as Promise<ResilientDevice>;

  it('a full disk fails that write with EIO; the link stays up and other requests work', async () => {
    const dev = await open('full/disk.img', { createSize: 64 * MiB, connections: 2 });
    try {
      assert.equal(dev.connectionCount, 2);
      const first = randomBytes(MiB);
      await dev.write(0, first);
      await assert.rejects(dev.write(8 * MiB, randomBytes(8 * MiB)), (e: unknown) => isNbdcryptError(e, 'EIO') && /SSH_FX_FAILURE.*disk may be full/.test(e.message));
      assert.equal(dev.linkState, 'up');
      assert.ok((await dev.read(0, MiB)).equals(first), 'what was written before reads back');
      await dev.flush();
    } finally {
      await dev.close();
    }
  });

  it('reads into and copies writes for replay from the command\'s buffer pool; the transport reports transient bytes', async () => {
    const pool = new BufferPool(64 * MiB);
    let transient = 0;
    const dev = await open('pooled.img', { createSize: 8 * MiB, io: { buffers: pool, noteTransientBytes: (n) => (transient += n) } });
    try {
      const data = randomBytes(MiB);
      await dev.write(0, data);
      const back = await dev.read(0, MiB);
      assert.ok(back.equals(data));
      pool.release(back);
      assert.equal(pool.idleBytes, MiB, 'the read result was lent by the pool and went back to it');
      assert.equal(pool.acquire(MiB).buffer, back.buffer, 'and is lent again');
      await dev.flush();
      assert.ok(pool.idleBytes >= MiB, 'the flush gave the replay log\'s pooled copy back');
      assert.ok(transient > MiB, `the SSH transport reported its packets (${transient} bytes)`);
    } finally {
      await dev.close();
    }
  });

  it('a read-only open takes no lock; a writer holds PATH.lock until close', async () => {
    const file = join(sshd.sftpData.local, 'ro.img');
    writeFileSync(file, randomBytes(4 * MiB));
    const ro = await open('ro.img', { readOnly: true });
    assert.equal(existsSync(`${file}.lock`), false);
    assert.ok((await ro.read(MiB, 4096)).equals(readFileSync(file).subarray(MiB, MiB + 4096)));
    await assert.rejects(ro.write(0, Buffer.alloc(512)), (e: unknown) => isNbdcryptError(e, 'EROFS'));
    await ro.close();
    const rw = await open('ro.img');
    assert.match(readFileSync(`${file}.lock`, 'utf8'), new RegExp(`pid=${process.pid} `));
    // A second writer in the same process (bench e2e serves a target twice) shares the lock.
    const again = await open('ro.img');
    await again.close();
    assert.ok(existsSync(`${file}.lock`), 'the second open leaves the first one\'s lock');
    await rw.close();
    assert.equal(existsSync(`${file}.lock`), false);
  });
});
