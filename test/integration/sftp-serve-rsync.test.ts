/**
 * The product over SFTP end to end, at scale: the image is a plain file on a storage-box
 * login (chroot, ForceCommand internal-sftp, no forwarding, no TTY); `serve sftp://...`,
 * nbdfuse + loop + XFS, rsync of a real tree of 30,000+ small files while the SSH link is
 * cut 20 times (sshd's session processes SIGKILLed, each cut while rsync runs):
 * no I/O error reaches the filesystem; SIGTERM removes the lock; serve again: `rsync -c`
 * finds no difference, `xfs_repair -n` is clean, no 4 KiB plaintext block is in the file on
 * the server and cryptsetup reads that file.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { luksDump, testPassphrase } from '../../peers/cryptsetup.js';
import { nbdcopy } from '../../peers/nbdcopy.js';
import { startNbdcrypt, type NbdcryptProc } from '../../peers/nbdcrypt.js';
import { nbdfuseMount, type NbdfuseMount } from '../../peers/nbdfuse-mount.js';
import { sftpVolume, type SftpVolume } from '../../peers/sftp-volume.js';
import { requireTool, run } from '../../peers/tools.js';
import { MiB, pickTree, plaintextBlocks, rsyncDiff, rsyncWithLinkCuts, scanForBlocks, type SourceTree } from './serve-remote.js';

const IMAGE_SIZE = 640 * MiB;
/** Many small files (metadata-heavy, as a backup is) of modest total size, to stay within CI time. */
const TREE_FILES = 30_000;
const TREE_BYTES = 32 * MiB;
const MAX_FILE_BYTES = 32 * 1024;
const CUTS = 20;
/** rsync --bwlimit so the copy lasts long enough for every cut to land during it. */
const RSYNC_SECONDS = 100;

describe('serve sftp:// with link cuts during rsync, restart, verify', { timeout: 420_000 }, () => {
  let v: SftpVolume;
  let tree: SourceTree;
  let srv: NbdcryptProc | undefined;
  let mnt: NbdfuseMount | undefined;
  before(async () => {
    v = await sftpVolume(IMAGE_SIZE);
    tree = pickTree(TREE_BYTES, join(v.dir, 'files.txt'), { minFiles: TREE_FILES, maxFileBytes: MAX_FILE_BYTES });
    assert.ok(tree.files.length >= TREE_FILES, `${tree.files.length} files picked`);
  });
  after(async () => {
    await mnt?.cleanup().catch(() => undefined);
    await srv?.stop();
    await v?.stop();
  });

  it(`${TREE_FILES}+ files, ${CUTS} link cuts during rsync: no I/O error; identical tree after a restart; clean xfs_repair; ciphertext only`, async () => {
    srv = await startNbdcrypt(v.serveArgs(), { env: v.env, timeoutMs: 60_000 });
    mnt = await nbdfuseMount(srv.uri(), { mkfs: 'xfs' });
    const dest = join(mnt.mountpoint, 'tree');
    run('mkdir', [dest]);
    const copy = await rsyncWithLinkCuts(tree, dest, { sshd: v.sshd, srv, cuts: CUTS, seconds: RSYNC_SECONDS, timeoutMs: 300_000 });
    run('sync', ['-f', mnt.mountpoint]);
    const copied = run('find', [dest, '-type', 'f']).stdout.trim().split('\n').length;
    assert.ok(copied >= TREE_FILES, `${copied} files arrived on the XFS`);
    console.log(`# ${copied} files (${(tree.bytes / MiB).toFixed(1)} MiB), ${copy.cuts} cuts and ${copy.reconnects} reconnects during a ${copy.seconds.toFixed(0)} s rsync (last cut at ${copy.lastCutSeconds.toFixed(0)} s)`);
    assert.doesNotMatch(srv.proc.stderr(), /giving up|error:/);
    await mnt.detach();
    assert.equal(await srv.stop(), 0, 'serve exits 0 on SIGTERM');
    assert.equal(existsSync(`${v.file}.lock`), false, 'SIGTERM removes the lock');

    srv = await startNbdcrypt(v.serveArgs(), { env: v.env, timeoutMs: 60_000 });
    await mnt.attach();
    assert.equal(rsyncDiff(tree, dest), '', 'rsync -c finds no difference after the cuts, a restart and a mount');
    await mnt.detach();

    // The plaintext image through nbdcrypt: xfs_repair's input and the scan's positive control.
    const plain = join(v.dir, 'plain.img');
    nbdcopy(srv.uri(), plain, { connections: 4 });
    assert.equal(await srv.stop(), 0);
    srv = undefined;
    const repair = run(requireTool('xfs_repair', 'xfsprogs'), ['-n', '-f', plain], { allowFail: true, timeoutMs: 180_000 });
    assert.equal(repair.status, 0, `xfs_repair -n: ${repair.stdout}${repair.stderr}`);
    const blocks = plaintextBlocks(tree);
    console.log(`# ${blocks.size} distinct plaintext blocks`);
    assert.ok(blocks.size > 10_000, `${blocks.size} distinct plaintext blocks`);
    const inPlain = scanForBlocks(plain, blocks);
    assert.ok(inPlain >= blocks.size * 0.99, `the plaintext image holds ${inPlain} of ${blocks.size} blocks`);
    run('rm', ['-f', plain]);
    assert.equal(scanForBlocks(v.file, blocks), 0, 'no plaintext block in the file on the server');

    assert.match(luksDump(v.file), /cipher: aes-xts-plain64/);
    assert.equal(testPassphrase(v.file, readFileSync(v.keyFile)), 0, 'cryptsetup unlocks the file on the server');
  });
});
