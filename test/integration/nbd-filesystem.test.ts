/**
 * Real filesystems on `nbdcrypt serve --unencrypted`: nbdfuse → loop → mkfs.ext4 / mkfs.xfs
 * → mount, copy a real tree (/usr/share/doc), tear the whole stack down, restart the server
 * on the same image, mount again and compare every file's checksum. Needs root (CI is root).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { nbdfuseMount, type FsType } from '../../peers/nbdfuse-mount.js';
import { startNbdcrypt, type NbdcryptProc } from '../../peers/nbdcrypt.js';
import { requireTool, run, scratchDir } from '../../peers/tools.js';

const SIZE = 1 << 30;
const SOURCE = '/usr/share/doc';
const BUDGET = 120 << 20; // bytes of file content copied, to bound the run time

/** path relative to root → sha256 of a file, 'link:TARGET' of a symlink, 'dir' of a directory. */
function manifest(root: string, files?: Set<string>): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const rel = relative(root, path);
      if (files && !files.has(rel)) continue;
      const st = lstatSync(path);
      if (st.isSymbolicLink()) out.set(rel, `link:${readlinkSync(path)}`);
      else if (st.isDirectory()) {
        out.set(rel, 'dir');
        walk(path);
      } else if (st.isFile()) out.set(rel, createHash('sha256').update(readFileSync(path)).digest('hex'));
    }
  };
  walk(root);
  return out;
}

/** The first files of SOURCE (sorted walk) up to BUDGET bytes, with their directories. */
function pickTree(): string[] {
  const picked: string[] = [];
  let bytes = 0;
  const walk = (dir: string): boolean => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const st = lstatSync(path);
      if (st.isDirectory()) {
        if (!walk(path)) return false;
      } else if (st.isFile() || st.isSymbolicLink()) {
        if (bytes + st.size > BUDGET) return false;
        bytes += st.size;
        picked.push(relative(SOURCE, path));
      }
    }
    return true;
  };
  walk(SOURCE);
  assert.ok(picked.length > 100, `${SOURCE} has too few files for a meaningful test`);
  return picked;
}

async function roundTrip(fs: FsType): Promise<void> {
  const dir = scratchDir();
  const image = join(dir.path, 'disk.img');
  const sock = join(dir.path, 'nbd.sock');
  const fd = openSync(image, 'w');
  ftruncateSync(fd, SIZE);
  closeSync(fd);
  const argv = ['serve', '--unencrypted', `file:${image}`, '--listen', `unix:${sock}`];
  let srv: NbdcryptProc | undefined = await startNbdcrypt(argv);
  let mount: Awaited<ReturnType<typeof nbdfuseMount>> | undefined;
  try {
    mount = await nbdfuseMount(srv.uri(), { mkfs: fs, expectedSize: SIZE });
    const files = pickTree();
    const dest = join(mount.mountpoint, 'tree');
    // cp --parents recreates each file's directories under dest; -a keeps symlinks as links.
    run('mkdir', [dest]);
    for (let i = 0; i < files.length; i += 500) {
      run('cp', ['-a', '--parents', ...files.slice(i, i + 500), dest], { cwd: SOURCE, timeoutMs: 300_000 });
    }
    const want = manifest(SOURCE, new Set([...files, ...files.flatMap(parents)]));
    assert.deepEqual(manifest(dest), want, 'copy differs before unmounting');

    await mount.detach();
    assert.equal(await srv.stop(), 0);
    srv = await startNbdcrypt(argv); // a fresh server: the data must come from the image file
    await mount.attach();
    assert.deepEqual(manifest(dest), want, `files differ after unmount, server restart and remount (${fs})`);
    await mount.detach();
    // The filesystem itself must be consistent, judged by its own checker on the loop device.
    const loop = run(requireTool('losetup', 'mount'), ['-f', '--show', '-r', image]).stdout.trim();
    try {
      if (fs === 'ext4') run(requireTool('fsck.ext4', 'e2fsprogs'), ['-f', '-n', loop], { timeoutMs: 120_000 });
      else run(requireTool('xfs_repair', 'xfsprogs'), ['-n', loop], { timeoutMs: 120_000 });
    } finally {
      run('losetup', ['-d', loop]);
    }
  } finally {
    await mount?.cleanup().catch(() => undefined);
    await srv?.stop();
    dir.remove();
  }
}

/** 'a/b/c' → ['a', 'a/b']. */
function parents(rel: string): string[] {
  const parts = rel.split('/');
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

test('ext4 through nbdfuse and loop survives unmount, server restart and remount', { timeout: 300_000 }, async () => {
  await roundTrip('ext4');
});

test('xfs through nbdfuse and loop survives unmount, server restart and remount', { timeout: 300_000 }, async () => {
  await roundTrip('xfs');
});
