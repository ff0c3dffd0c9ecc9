/**
 * `nbdcrypt serve` (encrypted) and `nbdcrypt demo` on local images, judged by nbdinfo,
 * qemu-io and cryptsetup: advertised block sizes follow the LUKS2 sector size, data written
 * is ciphertext on disk and reads back, SIGUSR1 prints the stats line, the exit statuses of
 * a wrong key / missing header / impossible --attach, and the demo's files, modes and reuse.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { luksDump } from '../../peers/cryptsetup.js';
import { nbdinfoJson } from '../../peers/nbdinfo.js';
import { nbdcryptBin, startNbdcrypt } from '../../peers/nbdcrypt.js';
import { qemuIo } from '../../peers/qemu-io.js';
import { run, scratchDir, waitFor } from '../../peers/tools.js';

const fastKdf = ['--pbkdf-memory', '16384', '--pbkdf-force-iterations', '4', '--pbkdf-parallel', '1'];

function nbdcrypt(args: string[], opts: { input?: Buffer } = {}) {
  return run(process.execPath, [nbdcryptBin, ...args], { allowFail: true, timeoutMs: 60_000, input: opts.input });
}

describe('nbdcrypt serve (encrypted) and demo on local images', { timeout: 180_000 }, () => {
  let dir: { path: string; remove: () => void };
  let key: string;
  const img = (n: string) => join(dir.path, n);
  before(() => {
    dir = scratchDir('nbdcrypt-serve-cli-');
    key = img('key');
    writeFileSync(key, randomBytes(32), { mode: 0o600 });
    for (const [name, sector] of [['a.img', '4096'], ['b.img', '512']] as const) {
      const r = nbdcrypt(['format', img(name), '--size', '64M', '--key-file', key, '--sector-size', sector, ...fastKdf]);
      assert.equal(r.status, 0, r.stderr);
    }
  });
  after(() => dir?.remove());

  it('serves the plaintext with block sizes min 512 / preferred = sector size / max 32 MiB', async () => {
    for (const [name, preferred] of [['a.img', 4096], ['b.img', 512]] as const) {
      const srv = await startNbdcrypt(['serve', img(name), '--key-file', key, '--listen', `unix:${img(`${name}.sock`)}`]);
      try {
        const e = nbdinfoJson(srv.uri()).exports[0]!;
        assert.equal(e['export-size'], 48 * 1024 * 1024);
        assert.equal(e.block_size_minimum, 512);
        assert.equal(e.block_size_preferred, preferred);
        assert.equal(e.block_size_maximum, 32 * 1024 * 1024);
        assert.equal(e.can_trim, false, 'no TRIM without --allow-discards');
        const w = qemuIo(srv.uri(), ['write -P 0x5a 0 1M', 'write -P 0x33 1048577 511', 'flush', 'read -P 0x5a 0 1M', 'read -P 0x33 1048577 511']);
        assert.doesNotMatch(w.stdout + w.stderr, /Pattern verification failed|error/i);
      } finally {
        assert.equal(await srv.stop(), 0);
      }
      const raw = readFileSync(img(name));
      assert.equal(raw.indexOf(Buffer.alloc(4096, 0x5a)), -1, 'the plaintext pattern must not be on disk');
    }
  });

  it('SIGUSR1 prints a stats line; the key file content never appears in the output', async () => {
    const srv = await startNbdcrypt(['serve', img('a.img'), '--key-file', key, '--listen', `unix:${img('s.sock')}`, '--allow-discards']);
    try {
      qemuIo(srv.uri(), ['read 0 64k', 'read 0 64k']);
      srv.proc.child.kill('SIGUSR1');
      await waitFor('stats line', () => /stats: /.test(srv.proc.stderr()), 10_000);
      assert.match(srv.proc.stderr(), /stats: \d+ requests in [\d.]+ s \(\d+ total\), read [\d.]+ MB\/s, write [\d.]+ MB\/s, cache hit \d+% .*queue depth \d+.*reconnects 0/);
      assert.equal(nbdinfoJson(srv.uri()).exports[0]!.can_trim, true, '--allow-discards on a file advertises TRIM');
    } finally {
      assert.equal(await srv.stop(), 0);
    }
    const out = srv.proc.stdout() + srv.proc.stderr();
    assert.ok(!out.includes(readFileSync(key).toString('hex')) && !out.includes(readFileSync(key).toString('latin1')));
  });

  it('exit statuses: wrong key 3, no LUKS2 header 4, memory: target 2, impossible --attach 2', () => {
    writeFileSync(img('wrong'), 'not the key');
    let r = nbdcrypt(['serve', img('a.img'), '--key-file', img('wrong')]);
    assert.equal(r.status, 3, r.stderr);
    writeFileSync(img('blank.img'), Buffer.alloc(32 * 1024 * 1024));
    r = nbdcrypt(['serve', img('blank.img'), '--key-file', key]);
    assert.equal(r.status, 4, r.stderr);
    r = nbdcrypt(['serve', 'memory:1M']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--unencrypted/);
    if (!statSync('/sys/module/nbd', { throwIfNoEntry: false })) {
      r = nbdcrypt(['serve', img('a.img'), '--key-file', key, '--attach', '/dev/nbd0']);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /nbd kernel module is not available|nbd-client is not installed|no such device/);
    }
  });

  it('demo: creates a 0700 dir, a 0600 key and a LUKS2 image, serves it, prints how to mount, reuses it', async () => {
    const demoDir = img('demo');
    for (const round of [1, 2]) {
      const srv = await startNbdcrypt(['demo', '--dir', demoDir, '--size', '64M']);
      try {
        assert.equal(srv.address, `unix:${join(demoDir, 'nbd.sock')}`);
        await waitFor('how-to text', () => /umount/.test(srv.proc.stdout()), 10_000);
        assert.match(srv.proc.stdout(), /mkfs\.xfs/);
        assert.match(srv.proc.stdout(), statSync('/sys/module/nbd', { throwIfNoEntry: false }) ? /nbd-client -unix/ : /nbd kernel module is not available[\s\S]*nbdfuse[\s\S]*losetup/);
        assert.match(srv.proc.stderr(), round === 1 ? /created / : /reusing /);
        assert.equal(nbdinfoJson(srv.uri()).exports[0]!['export-size'], 48 * 1024 * 1024);
      } finally {
        assert.equal(await srv.stop(), 0);
      }
    }
    assert.equal(statSync(demoDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(demoDir, 'demo.key')).mode & 0o777, 0o600);
    assert.match(luksDump(join(demoDir, 'demo.img')), /PBKDF:\s+argon2id/);
  });
});
