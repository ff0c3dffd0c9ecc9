/**
 * sftp:// through the CLI against a storage-box style login (chroot, ForceCommand
 * internal-sftp, no forwarding): `format --size` makes a sparse plain LUKS2 file that
 * cryptsetup reads on the server, `dump` reads it, a second format is refused, serve holds
 * PATH.lock (a second writer is refused naming the holder; after kill -9 the stale holder is
 * named and --break-lock takes over; SIGTERM removes it), and the path errors get one line
 * and their exit status each.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { luksDump, testPassphrase } from '../../peers/cryptsetup.js';
import { startNbdcrypt } from '../../peers/nbdcrypt.js';
import { sftpVolume, type SftpVolume } from '../../peers/sftp-volume.js';
import { waitFor } from '../../peers/tools.js';

const MiB = 1024 * 1024;
const SIZE = 512 * MiB;

describe('sftp:// targets through the CLI', { timeout: 240_000 }, () => {
  let v: SftpVolume;
  before(async () => {
    v = await sftpVolume(SIZE);
  });
  after(async () => {
    await v?.stop();
  });

  it('format --size creates a sparse LUKS2 file that cryptsetup reads on the server', () => {
    const st = statSync(v.file);
    assert.equal(st.size, SIZE);
    assert.ok(st.blocks * 512 < 20 * MiB, `only the header area is allocated (${st.blocks * 512} bytes)`);
    const dump = luksDump(v.file);
    assert.match(dump, /Version:\s+2/);
    assert.match(dump, /cipher: aes-xts-plain64/);
    assert.equal(testPassphrase(v.file, readFileSync(v.keyFile)), 0, 'cryptsetup unlocks the file with the key file');
    const ours = v.cli(['dump', v.uri, ...v.sshArgs]);
    assert.equal(ours.status, 0, ours.stderr);
    assert.match(ours.stdout, /Version:\s+2/);
  });

  it('refuses to format the file again without --force', () => {
    const r = v.cli(['format', v.uri, '--size', String(SIZE), '--key-file', v.keyFile, '--pbkdf-force-iterations', '4', '--pbkdf-memory', '65536', ...v.sshArgs]);
    assert.equal(r.status, 5, r.stderr);
    const other = v.cli(['format', v.uri, '--size', String(SIZE * 2), '--key-file', v.keyFile, ...v.sshArgs]);
    assert.equal(other.status, 5, other.stderr);
    assert.match(other.stderr, /already exists with 536870912 bytes/);
  });

  it('one writer: a second serve is refused naming the holder; SIGTERM removes the lock', async () => {
    const srv = await startNbdcrypt(v.serveArgs(), { env: v.env, timeoutMs: 60_000 });
    const lock = `${v.file}.lock`;
    try {
      assert.match(readFileSync(lock, 'utf8'), new RegExp(`pid=${srv.proc.pid} `));
      const second = v.cli(['serve', v.uri, '--key-file', v.keyFile, '--listen', `unix:${join(v.dir, 'second.sock')}`, ...v.sshArgs]);
      assert.equal(second.status, 11, second.stderr);
      assert.match(second.stderr, new RegExp(`is in use: .*disk\\.img\\.lock says nbdcrypt host=\\S+ pid=${srv.proc.pid} .*--break-lock`));
      assert.equal(second.stderr.match(/error:/g)?.length, 1, 'one error line');
      // Readers take no lock.
      assert.equal(v.cli(['dump', v.uri, ...v.sshArgs]).status, 0);
    } finally {
      assert.equal(await srv.stop(), 0);
    }
    assert.equal(existsSync(lock), false, 'a clean exit removes the lock');
  });

  it('after kill -9 the stale holder is named and --break-lock takes over', async () => {
    const srv = await startNbdcrypt(v.serveArgs(), { env: v.env, timeoutMs: 60_000 });
    srv.proc.child.kill('SIGKILL');
    await srv.proc.exited;
    const lock = `${v.file}.lock`;
    assert.ok(existsSync(lock), 'the lock outlives a killed process');
    const again = v.cli(['serve', v.uri, '--key-file', v.keyFile, '--listen', `unix:${join(v.dir, 'again.sock')}`, ...v.sshArgs]);
    assert.equal(again.status, 11, again.stderr);
    // The stale holder in full (host, pid, start time) and the way out, in one error line.
    assert.match(again.stderr, new RegExp(`is in use: /data/disk\\.img\\.lock says nbdcrypt host=${hostname()} pid=${srv.proc.pid} started=\\d{4}-\\d\\d-\\d\\dT\\S+; if that process is gone, rerun with --break-lock`));
    assert.equal(again.stderr.match(/error:/g)?.length, 1, 'one error line');
    const taker = await startNbdcrypt(v.serveArgs(['--break-lock']), { env: v.env, timeoutMs: 60_000 });
    await waitFor('the new lock', () => readFileSync(lock, 'utf8').includes(`pid=${taker.proc.pid} `), 10_000);
    assert.match(taker.proc.stderr(), /--break-lock: took over/);
    assert.equal(await taker.stop(), 0);
    assert.equal(existsSync(lock), false);
  });

  it('a directory, a missing directory and a missing file: one line and exit 7 each', () => {
    mkdirSync(join(v.sshd.sftpData.local, 'adir'), { recursive: true });
    const base = v.uri.slice(0, v.uri.lastIndexOf('/'));
    for (const [path, why] of [
      ['adir', /is a directory on the server/],
      ['nowhere/disk.img', /no directory \/data\/nowhere on the server/],
      ['absent.img', /no such file on the server/],
    ] as const) {
      const r = v.cli(['dump', `${base}/${path}`, ...v.sshArgs]);
      assert.equal(r.status, 7, `${path}: ${r.stderr}`);
      assert.match(r.stderr, why);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${path}: one line`);
    }
  });

  it('a file shorter than its LUKS2 data area is refused with exit 4', () => {
    const short = join(v.sshd.sftpData.local, 'short.img');
    // The keyslots fit (unlocking works), the data segment at 16 MiB does not.
    writeFileSync(short, readFileSync(v.file).subarray(0, 16 * MiB - 4096));
    const r = v.cli(['serve', v.uri.replace('disk.img', 'short.img'), '--key-file', v.keyFile, '--listen', `unix:${join(v.dir, 'short.sock')}`, ...v.sshArgs]);
    assert.equal(r.status, 4, r.stderr);
    assert.equal(r.stderr.match(/error:/g)?.length, 1, 'one error line');
  });
});

describe('sftp:// as an unprivileged storage user', { timeout: 120_000 }, () => {
  let v: SftpVolume;
  before(async () => {
    // Files and directory belong to root; the login is nobody's.
    v = await sftpVolume(SIZE, { sshd: { user: 'nobody' }, format: false });
    writeFileSync(v.file, Buffer.alloc(MiB), { mode: 0o600 });
  });
  after(async () => {
    await v?.stop();
  });

  it('permission denied on the file or its directory: one line and exit 10', () => {
    const read = v.cli(['dump', v.uri, ...v.sshArgs]);
    assert.equal(read.status, 10, read.stderr);
    assert.match(read.stderr, /cannot open \/data\/disk\.img: permission denied/);
    assert.equal(read.stderr.trim().split('\n').length, 1);
    const create = v.cli(['format', v.uri.replace('disk.img', 'new.img'), '--size', '64M', '--key-file', v.keyFile, ...v.sshArgs]);
    assert.equal(create.status, 10, create.stderr);
    assert.match(create.stderr, /cannot create the lock file \/data\/new\.img\.lock \(SSH_FX_PERMISSION_DENIED/);
    assert.equal(create.stderr.trim().split('\n').length, 1);
  });
});
