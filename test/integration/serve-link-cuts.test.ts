/**
 * The SSH link cut 10 times during an rsync onto the mounted encrypted volume (the sshd
 * process serving nbdcrypt's session is SIGKILLed): nbdcrypt reconnects and replays, so no
 * I/O error reaches the filesystem. rsync succeeds, the tree is identical (`rsync -c`),
 * `xfs_repair -n` is clean, and the stats line (SIGUSR1) counts the reconnects.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { nbdcopy } from '../../peers/nbdcopy.js';
import { startNbdcrypt } from '../../peers/nbdcrypt.js';
import { nbdfuseMount } from '../../peers/nbdfuse-mount.js';
import { requireTool, run, waitFor } from '../../peers/tools.js';
import { MiB, remoteTreeFixture, rsyncDiff, rsyncWithLinkCuts } from './serve-remote.js';

const EXPORT_SIZE = 640 * MiB;
const TREE_BYTES = 104 * MiB;
const CUTS = 10;
/** rsync --bwlimit so the copy lasts long enough for every cut to land during it. */
const RSYNC_SECONDS = 45;

describe('serve over ssh with the link cut during rsync', { timeout: 300_000 }, () => {
  const f = remoteTreeFixture(EXPORT_SIZE, TREE_BYTES);

  it(`${CUTS} link cuts during rsync: no I/O error, identical tree, clean xfs_repair`, async () => {
    f.srv = await startNbdcrypt(f.vol.serveArgs(), { env: f.vol.env, timeoutMs: 60_000 });
    f.mnt = await nbdfuseMount(f.srv.uri(), { mkfs: 'xfs' });
    const dest = join(f.mnt.mountpoint, 'tree');
    run('mkdir', [dest]);
    await rsyncWithLinkCuts(f.tree, dest, { sshd: f.vol.sshd, srv: f.srv, cuts: CUTS, seconds: RSYNC_SECONDS, timeoutMs: 240_000 });
    run('sync', ['-f', f.mnt.mountpoint]);
    // The filesystem still takes writes (XFS shuts down on an I/O error).
    run('touch', [join(f.mnt.mountpoint, 'after-cuts')]);
    assert.equal(rsyncDiff(f.tree, dest), '', 'rsync -c finds no difference');

    f.srv.proc.child.kill('SIGUSR1');
    await waitFor('stats line', () => /stats: .*reconnects (\d+)/.test(f.srv!.proc.stderr()), 10_000);
    const counted = Number(/stats: .*reconnects (\d+)/.exec(f.srv.proc.stderr())![1]);
    assert.ok(counted >= CUTS, `stats count ${counted} reconnects`);
    assert.doesNotMatch(f.srv.proc.stderr(), /giving up|error:/);
    await f.mnt.detach();

    // xfs_repair -n on the plaintext image, read back through nbdcrypt.
    const plain = join(f.vol.dir, 'plain.img');
    nbdcopy(f.srv.uri(), plain, { connections: 4 });
    const repair = run(requireTool('xfs_repair', 'xfsprogs'), ['-n', '-f', plain], { allowFail: true, timeoutMs: 180_000 });
    assert.equal(repair.status, 0, `xfs_repair -n: ${repair.stdout}${repair.stderr}`);
    run('rm', ['-f', plain]);
    assert.equal(await f.srv.stop(), 0, 'serve exits 0 on SIGTERM');
    f.srv = undefined;
  });
});
