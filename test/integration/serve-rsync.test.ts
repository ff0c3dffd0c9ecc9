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
import { after, before, describe, it } from 'node:test';
import { luksDump, testPassphrase } from '../peers/cryptsetup.js';
import { nbdcopy } from '../peers/nbdcopy.js';
import { startNbdcrypt, type NbdcryptProc } from '../peers/nbdcrypt.js';
import { nbdfuseMount, type NbdfuseMount } from '../peers/nbdfuse-mount.js';
import { run } from '../peers/tools.js';
import { MiB, pickTree, plaintextBlocks, remoteVolume, rsyncDiff, scanForBlocks, type RemoteVolume, type SourceTree } from './serve-remote.js';

const EXPORT_SIZE = 640 * MiB;
const TREE_BYTES = 110 * MiB;

describe('serve over ssh: format, xfs, rsync, restart, verify', { timeout: 300_000 }, () => {
  let vol: RemoteVolume;
  let srv: NbdcryptProc | undefined;
  let mnt: NbdfuseMount | undefined;
  let tree: SourceTree;
  before(async () => {
    vol = await remoteVolume(EXPORT_SIZE);
    tree = pickTree(TREE_BYTES, join(vol.dir, 'files.txt'));
  });
  after(async () => {
    await mnt?.cleanup().catch(() => undefined);
    await srv?.stop();
    await vol?.stop();
  });

  it('copies a real tree onto the encrypted remote and reads it back identical after a restart', async () => {
    assert.ok(tree.bytes >= 100 * MiB, `source tree has ${tree.bytes} bytes`);
    assert.ok(tree.files.length >= 2000, `source tree has ${tree.files.length} files`);

    srv = await startNbdcrypt(vol.serveArgs(), { env: vol.env, timeoutMs: 60_000 });
    assert.match(srv.proc.stdout(), /nbd-client -unix \S+ -N disk -b 4096 -t 0 \/dev\/nbd0/);
    assert.match(srv.proc.stdout(), /nbdfuse/);
    mnt = await nbdfuseMount(srv.uri(), { mkfs: 'xfs' });
    const dest = join(mnt.mountpoint, 'tree');
    run('mkdir', [dest]);
    const t0 = Date.now();
    run('rsync', ['-a', `--files-from=${tree.listFile}`, '/', `${dest}/`], { timeoutMs: 240_000 });
    run('sync', ['-f', mnt.mountpoint]);
    const secs = (Date.now() - t0) / 1000;
    process.stderr.write(`rsync of ${tree.files.length} files, ${(tree.bytes / MiB).toFixed(0)} MiB: ${secs.toFixed(1)} s (${(tree.bytes / MiB / secs).toFixed(1)} MiB/s)\n`);
    await mnt.detach();
    assert.equal(await srv.stop(), 0, 'serve exits 0 on SIGTERM');
    assert.doesNotMatch(srv.proc.stderr(), /error:/);

    srv = await startNbdcrypt(vol.serveArgs(), { env: vol.env, timeoutMs: 60_000 });
    await mnt.attach();
    assert.equal(rsyncDiff(tree, dest), '', 'rsync -c finds no difference after unmount, restart and mount');
    await mnt.detach();

    // The plaintext image, read through nbdcrypt: the positive control of the scan below.
    const plain = join(vol.dir, 'plain.img');
    nbdcopy(srv.uri(), plain, { connections: 4 });
    assert.equal(await srv.stop(), 0);
    srv = undefined;

    const blocks = plaintextBlocks(tree);
    assert.ok(blocks.size > 10_000, `${blocks.size} distinct plaintext blocks`);
    const inPlain = scanForBlocks(plain, blocks);
    assert.ok(inPlain >= blocks.size * 0.99, `the plaintext image holds ${inPlain} of ${blocks.size} blocks`);
    run('rm', ['-f', plain]);
    const inRemote = scanForBlocks(vol.nbd.file, blocks);
    assert.equal(inRemote, 0, `${inRemote} plaintext blocks found in the remote file`);

    const dump = luksDump(vol.nbd.file);
    assert.match(dump, /Version:\s+2/);
    assert.match(dump, /cipher: aes-xts-plain64/);
    assert.match(dump, /sector: 4096 \[bytes\]/);
    assert.equal(testPassphrase(vol.nbd.file, readFileSync(vol.keyFile)), 0, 'cryptsetup unlocks the remote file with the key file');
  });
});
