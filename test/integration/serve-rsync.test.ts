/**
 * The whole product end to end with real peers: sshd and nbd-server on loopback;
 * `nbdcrypt format ssh://...`; `nbdcrypt serve ssh://...`; nbdfuse + loop + mkfs.xfs + mount;
 * rsync a real tree (≥ 100 MiB of small files from /usr); unmount, stop, serve again, mount;
 * `rsync -c` finds no difference; no 4 KiB block of the plaintext appears in the remote's
 * file (while the plaintext image holds them: the scan can fail); cryptsetup reads the
 * remote file. README "Workflow" is this test, by hand.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { luksDump, testPassphrase } from '../../peers/cryptsetup.js';
import { nbdcopy } from '../../peers/nbdcopy.js';
import { startNbdcrypt } from '../../peers/nbdcrypt.js';
import { nbdfuseMount } from '../../peers/nbdfuse-mount.js';
import { run } from '../../peers/tools.js';
import { MiB, plaintextBlocks, remoteTreeFixture, rsyncDiff, scanForBlocks } from './serve-remote.js';

const EXPORT_SIZE = 640 * MiB;
const TREE_BYTES = 110 * MiB;

describe('serve over ssh: format, xfs, rsync, restart, verify', { timeout: 300_000 }, () => {
  const f = remoteTreeFixture(EXPORT_SIZE, TREE_BYTES);

  it('copies a real tree onto the encrypted remote and reads it back identical after a restart', async () => {
    assert.ok(f.tree.bytes >= 100 * MiB, `source tree has ${f.tree.bytes} bytes`);
    assert.ok(f.tree.files.length >= 2000, `source tree has ${f.tree.files.length} files`);

    f.srv = await startNbdcrypt(f.vol.serveArgs(), { env: f.vol.env, timeoutMs: 60_000 });
    assert.match(f.srv.proc.stdout(), /nbd-client -unix \S+ -N disk -b 4096 -t 0 \/dev\/nbd0/);
    assert.match(f.srv.proc.stdout(), /nbdfuse/);
    f.mnt = await nbdfuseMount(f.srv.uri(), { mkfs: 'xfs' });
    const dest = join(f.mnt.mountpoint, 'tree');
    run('mkdir', [dest]);
    const t0 = Date.now();
    run('rsync', ['-a', `--files-from=${f.tree.listFile}`, '/', `${dest}/`], { timeoutMs: 240_000 });
    run('sync', ['-f', f.mnt.mountpoint]);
    const secs = (Date.now() - t0) / 1000;
    process.stderr.write(`rsync of ${f.tree.files.length} files, ${(f.tree.bytes / MiB).toFixed(0)} MiB: ${secs.toFixed(1)} s (${(f.tree.bytes / MiB / secs).toFixed(1)} MiB/s)\n`);
    await f.mnt.detach();
    assert.equal(await f.srv.stop(), 0, 'serve exits 0 on SIGTERM');
    assert.doesNotMatch(f.srv.proc.stderr(), /error:/);

    f.srv = await startNbdcrypt(f.vol.serveArgs(), { env: f.vol.env, timeoutMs: 60_000 });
    await f.mnt.attach();
    assert.equal(rsyncDiff(f.tree, dest), '', 'rsync -c finds no difference after unmount, restart and mount');
    await f.mnt.detach();

    // The plaintext image, read through nbdcrypt: the positive control of the scan below.
    const plain = join(f.vol.dir, 'plain.img');
    nbdcopy(f.srv.uri(), plain, { connections: 4 });
    assert.equal(await f.srv.stop(), 0);
    f.srv = undefined;

    const blocks = plaintextBlocks(f.tree);
    assert.ok(blocks.size > 10_000, `${blocks.size} distinct plaintext blocks`);
    const inPlain = scanForBlocks(plain, blocks);
    assert.ok(inPlain >= blocks.size * 0.99, `the plaintext image holds ${inPlain} of ${blocks.size} blocks`);
    run('rm', ['-f', plain]);
    const inRemote = scanForBlocks(f.vol.nbd.file, blocks);
    assert.equal(inRemote, 0, `${inRemote} plaintext blocks found in the remote file`);

    const dump = luksDump(f.vol.nbd.file);
    assert.match(dump, /Version:\s+2/);
    assert.match(dump, /cipher: aes-xts-plain64/);
    assert.match(dump, /sector: 4096 \[bytes\]/);
    assert.equal(testPassphrase(f.vol.nbd.file, readFileSync(f.vol.keyFile)), 0, 'cryptsetup unlocks the remote file with the key file');
  });
});
