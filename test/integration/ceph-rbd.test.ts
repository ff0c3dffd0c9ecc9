/**
 * nbdcrypt on a distributed block store: a private Ceph cluster (one monitor, two memstore
 * OSDs, a pool of size 2) holds an RBD image that qemu-nbd exports with `--cache=none`.
 * `nbdcrypt format nbd://...` straight onto the export; `nbdcrypt serve ssh://...` through a
 * real sshd; nbdfuse + loop + XFS; `rsync --fsync` of a real tree while qemu-nbd is crashed
 * and restarted (the new instance takes the image's exclusive lock over) and while one OSD is
 * crashed and restarted (it comes back empty and is backfilled). The copy finishes, the
 * placement groups end active+clean on both OSDs, `rsync -c` through `serve nbd://` finds no
 * difference, and the image read back by `rbd export` from the restarted OSD alone holds no
 * 4 KiB block of the tree (the plaintext image does) and a LUKS2 header cryptsetup opens.
 * docs/scaling-out.md is this test, by hand.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCeph, type CephCluster } from '../../peers/ceph.js';
import { luksDump, testPassphrase } from '../../peers/cryptsetup.js';
import { nbdcopy } from '../../peers/nbdcopy.js';
import { nbdcryptBin, startNbdcrypt, type NbdcryptProc } from '../../peers/nbdcrypt.js';
import { nbdfuseMount, type NbdfuseMount } from '../../peers/nbdfuse-mount.js';
import { nbdinfoJson } from '../../peers/nbdinfo.js';
import { exportRbdImage, type RbdExport } from '../../peers/rbd-export.js';
import { startSshd, type SshdPeer } from '../../peers/sshd.js';
import { requireTool, run, scratchDir, sleep, startProcess, waitFor } from '../../peers/tools.js';
import { MiB, pickTree, plaintextBlocks, rsyncDiff, scanForBlocks, type SourceTree } from './serve-remote.js';

const IMAGE_SIZE = 512 * MiB;
const TREE_BYTES = 48 * MiB;
/** The OSD crashed during the copy; the other one is stopped at the end. */
const RESTARTED_OSD = 1;
const OTHER_OSD = 0;

/** Files in `dir` and below (how far rsync has got). */
function countFiles(dir: string): number {
  try {
    return readdirSync(dir, { recursive: true }).length;
  } catch {
    return 0;
  }
}

describe('nbdcrypt on a Ceph RBD image exported by qemu-nbd', { timeout: 600_000 }, () => {
  const scratch = scratchDir('nbdcrypt-ceph-test-');
  const dir = scratch.path;
  const keyFile = join(dir, 'volume.key');
  const knownHosts = join(dir, 'known_hosts');
  const socket = join(dir, 'nbd.sock');
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: dir };
  delete env.SSH_AUTH_SOCK;
  let cluster: CephCluster;
  let exp: RbdExport;
  let sshd: SshdPeer;
  let tree: SourceTree;
  let srv: NbdcryptProc | undefined;
  let mnt: NbdfuseMount | undefined;
  let dest = '';

  before(async () => {
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    tree = pickTree(TREE_BYTES, join(dir, 'files.txt'));
    cluster = await startCeph({ osds: 2, size: 2 });
    exp = await exportRbdImage(cluster, 'disk', IMAGE_SIZE);
    sshd = await startSshd();
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
  });

  after(async () => {
    await mnt?.cleanup().catch(() => undefined);
    await srv?.stop();
    await exp?.stop();
    await sshd?.stop();
    await cluster?.stop();
    scratch.remove();
  });

  const sshUri = (): string => `ssh://${sshd.user}@${sshd.host}:${sshd.port}/${exp.exportName}?nbd=${exp.host}:${exp.port}`;
  const serve = (uri: string, extra: string[] = []): Promise<NbdcryptProc> =>
    startNbdcrypt(['serve', uri, '--key-file', keyFile, '--listen', `unix:${socket}`, ...extra], { env, timeoutMs: 60_000 });

  it('qemu-nbd exports the image with librbd cache off, flush, FUA and multi-conn, on two OSDs', async () => {
    assert.equal(exp.clientConfig('rbd_cache'), 'false', '--cache=none turns the librbd cache off');
    const info = nbdinfoJson(exp.uri).exports[0]!;
    assert.equal(info['export-size'], IMAGE_SIZE);
    assert.ok(info.can_flush && info.can_fua, 'flush and FUA advertised');
    assert.ok(info.can_multi_conn, 'multi-conn advertised (--shared > 1)');
    const pgs = cluster.pgStates();
    assert.ok(pgs.length > 0 && pgs.every((pg) => pg.state === 'active+clean' && pg.acting.length === 2), JSON.stringify(pgs));
  });

  it('formats over nbd://, copies a real tree over ssh:// through a crash of qemu-nbd and of an OSD, reads it back identical', async () => {
    assert.ok(tree.files.length >= 500, `source tree has ${tree.files.length} files`);
    // Real argon2id at a small cost: the key is random, and the test needs seconds, not minutes.
    run(process.execPath, [nbdcryptBin, 'format', exp.uri, '--key-file', keyFile, '--pbkdf-memory', '65536', '--pbkdf-force-iterations', '4', '--pbkdf-parallel', '1'], { env, timeoutMs: 120_000 });

    srv = await serve(sshUri(), ['--known-hosts', knownHosts, '--identity', sshd.userKey]);
    mnt = await nbdfuseMount(srv.uri(), { mkfs: 'xfs' });
    dest = join(mnt.mountpoint, 'tree');
    run('mkdir', [dest]);
    // --fsync: every file goes down to the OSDs before the next, so the crashes below land
    // while writes and flushes are in flight through the whole stack.
    const t0 = Date.now();
    const rsync = startProcess(requireTool('rsync', 'rsync'), ['-a', '--fsync', `--files-from=${tree.listFile}`, '/', `${dest}/`]);
    let rsyncDone = false;
    void rsync.exited.then(() => (rsyncDone = true));
    const s = srv;
    const reconnects = (): number => (s.proc.stderr().match(/reconnected after/g) ?? []).length;
    try {
      await waitFor('rsync to copy 100 files', () => rsyncDone || countFiles(dest) >= 100, 120_000, 100);
      assert.ok(!rsyncDone, 'rsync was still copying when the OSD crashed');
      await cluster.killOsd(RESTARTED_OSD);
      await sleep(1000);
      await cluster.startOsd(RESTARTED_OSD);
      const atOsd = countFiles(dest);
      await waitFor('rsync to go on after the OSD restart', () => rsyncDone || countFiles(dest) >= atOsd + 50, 120_000, 100);

      assert.ok(!rsyncDone, 'rsync was still copying when qemu-nbd crashed');
      const before = reconnects();
      await exp.kill();
      await sleep(1000);
      await exp.start();
      // The dead exporter's exclusive lock on the image is broken once its watch times out
      // on the OSDs (30 s by default): until then the new instance cannot write.
      await waitFor('nbdcrypt to reconnect to the restarted qemu-nbd', () => reconnects() > before, 90_000, 100);
    } finally {
      await waitFor('rsync to finish', () => rsyncDone, 300_000, 200).catch(async (e: unknown) => {
        await rsync.stop();
        throw e;
      });
    }
    assert.equal(await rsync.exited, 0, `rsync failed: ${rsync.stderr()}`);
    run('sync', ['-f', mnt.mountpoint]);
    const secs = (Date.now() - t0) / 1000;
    process.stderr.write(`rsync --fsync of ${tree.files.length} files, ${(tree.bytes / MiB).toFixed(0)} MiB through two crashes: ${secs.toFixed(1)} s\n`);
    process.stderr.write(`${/^.*reconnected after.*$/m.exec(srv.proc.stderr())?.[0] ?? ''}\n`);

    // The restarted OSD rejoined: every placement group is back on both OSDs.
    await cluster.waitClean(180_000);
    await mnt.detach();
    assert.equal(await srv.stop(), 0, 'serve exits 0 on SIGTERM');
    assert.doesNotMatch(srv.proc.stderr(), /error:|giving up/);

    // Read back over nbd:// straight to qemu-nbd, no SSH.
    srv = await serve(exp.uri);
    await mnt.attach();
    assert.equal(rsyncDiff(tree, dest), '', 'rsync -c finds no difference');
    await mnt.detach();
    // The plaintext image, read through nbdcrypt: the positive control of the scan below.
    nbdcopy(srv.uri(), join(dir, 'plain.img'), { connections: 1 });
    assert.equal(await srv.stop(), 0);
    srv = undefined;
  });

  it('the image read from the restarted OSD alone holds no plaintext block and a LUKS2 header cryptsetup opens', async () => {
    await exp.stop();
    // Only the OSD that crashed (and came back empty) is left to serve the reads.
    await cluster.killOsd(OTHER_OSD);
    cluster.markDown(OTHER_OSD);
    const image = join(dir, 'rbd-export.img');
    cluster.rbd(['export', `${cluster.pool}/disk`, image], 300_000);

    const blocks = plaintextBlocks(tree);
    assert.ok(blocks.size > 2_000, `${blocks.size} distinct plaintext blocks`);
    const plain = join(dir, 'plain.img');
    const inPlain = scanForBlocks(plain, blocks);
    assert.ok(inPlain >= blocks.size * 0.99, `the plaintext image holds ${inPlain} of ${blocks.size} blocks`);
    run('rm', ['-f', plain]);
    const inImage = scanForBlocks(image, blocks);
    assert.equal(inImage, 0, `${inImage} plaintext blocks found in the RBD image`);

    const dump = luksDump(image);
    assert.match(dump, /Version:\s+2/);
    assert.match(dump, /cipher: aes-xts-plain64/);
    assert.match(dump, /sector: 4096 \[bytes\]/);
    assert.equal(testPassphrase(image, readFileSync(keyFile)), 0, 'cryptsetup unlocks the RBD image with the key file');
  });
});
