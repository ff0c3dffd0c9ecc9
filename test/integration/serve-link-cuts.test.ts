/**
 * The SSH link cut 10 times during an rsync onto the mounted encrypted volume (the sshd
 * process serving nbdcrypt's session is SIGKILLed): nbdcrypt reconnects and replays, so no
 * I/O error reaches the filesystem. rsync succeeds, the tree is identical (`rsync -c`),
 * `xfs_repair -n` is clean, and the stats line (SIGUSR1) counts the reconnects.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nbdcopy } from '../peers/nbdcopy.js';
import { startNbdcrypt, type NbdcryptProc } from '../peers/nbdcrypt.js';
import { nbdfuseMount, type NbdfuseMount } from '../peers/nbdfuse-mount.js';
import { requireTool, run, sleep, startProcess, waitFor } from '../peers/tools.js';
import { MiB, pickTree, remoteVolume, rsyncDiff, type RemoteVolume, type SourceTree } from './serve-remote.js';

const EXPORT_SIZE = 640 * MiB;
const TREE_BYTES = 104 * MiB;
const CUTS = 10;
/** rsync --bwlimit so the copy lasts long enough for every cut to land during it. */
const RSYNC_SECONDS = 45;

describe('serve over ssh with the link cut during rsync', { timeout: 300_000 }, () => {
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

  it(`${CUTS} link cuts during rsync: no I/O error, identical tree, clean xfs_repair`, async () => {
    const reconnects = (): number => (srv!.proc.stderr().match(/reconnected after/g) ?? []).length;
    srv = await startNbdcrypt(vol.serveArgs(), { env: vol.env, timeoutMs: 60_000 });
    mnt = await nbdfuseMount(srv.uri(), { mkfs: 'xfs' });
    const dest = join(mnt.mountpoint, 'tree');
    run('mkdir', [dest]);
    const bwlimitK = Math.max(256, Math.floor(tree.bytes / 1024 / RSYNC_SECONDS));
    const rsync = startProcess(requireTool('rsync', 'rsync'), ['-a', `--bwlimit=${bwlimitK}`, `--files-from=${tree.listFile}`, '/', `${dest}/`]);
    let rsyncDone = false;
    void rsync.exited.then(() => (rsyncDone = true));
    let cuts = 0;
    try {
      await sleep(2000);
      while (cuts < CUTS && !rsyncDone) {
        const before = reconnects();
        const killed = await vol.sshd.killConnections();
        assert.ok(killed > 0, 'an sshd process served the session');
        cuts++;
        await waitFor(`reconnect after cut ${cuts}`, () => reconnects() > before, 60_000, 50);
        await sleep(1500);
      }
    } finally {
      await waitFor('rsync to finish', () => rsyncDone, 240_000, 200).catch(async (e: unknown) => {
        await rsync.stop();
        throw e;
      });
    }
    assert.equal(cuts, CUTS, `only ${cuts} cuts landed before rsync finished`);
    assert.equal(await rsync.exited, 0, `rsync failed: ${rsync.stderr()}`);
    run('sync', ['-f', mnt.mountpoint]);
    // The filesystem still takes writes (XFS shuts down on an I/O error).
    run('touch', [join(mnt.mountpoint, 'after-cuts')]);
    assert.equal(rsyncDiff(tree, dest), '', 'rsync -c finds no difference');

    srv.proc.child.kill('SIGUSR1');
    await waitFor('stats line', () => /stats: .*reconnects (\d+)/.test(srv!.proc.stderr()), 10_000);
    const counted = Number(/stats: .*reconnects (\d+)/.exec(srv.proc.stderr())![1]);
    assert.ok(counted >= CUTS, `stats count ${counted} reconnects`);
    assert.doesNotMatch(srv.proc.stderr(), /giving up|error:/);
    await mnt.detach();

    // xfs_repair -n on the plaintext image, read back through nbdcrypt.
    const plain = join(vol.dir, 'plain.img');
    nbdcopy(srv.uri(), plain, { connections: 4 });
    const repair = run(requireTool('xfs_repair', 'xfsprogs'), ['-n', '-f', plain], { allowFail: true, timeoutMs: 180_000 });
    assert.equal(repair.status, 0, `xfs_repair -n: ${repair.stdout}${repair.stderr}`);
    run('rm', ['-f', plain]);
    assert.equal(await srv.stop(), 0, 'serve exits 0 on SIGTERM');
    srv = undefined;
  });
});
