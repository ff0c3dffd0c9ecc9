/**
 * A real filesystem on an NBD export without the kernel nbd module (absent on these
 * machines): nbdfuse exposes the export as a file, losetup turns the file into a block
 * device, mkfs and mount use it. Needs root (CI is root). Every step is undone by `detach()`
 * in reverse order (umount, losetup -d, fusermount3 -u, then kill nbdfuse by PID), also after
 * a failure half-way.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { requireTool, run, scratchDir, startProcess, waitFor, type Proc } from './tools.js';

export type FsType = 'ext4' | 'xfs';

export interface NbdfuseMount {
  /** Where the filesystem is mounted. */
  mountpoint: string;
  /** The loop device in use. */
  loopDevice: string;
  /** Unmounts and tears down the whole stack (safe to call twice). */
  detach(): Promise<void>;
  /** Builds the stack again on the same URI and mounts (after detach()). */
  attach(): Promise<void>;
  /** detach() and remove the scratch directory. */
  cleanup(): Promise<void>;
}

/** `readOnly` mounts with -o ro (and the loop device read-only): nothing is written to the export. */
export async function nbdfuseMount(uri: string, opts: { mkfs?: FsType; expectedSize?: number; readOnly?: boolean } = {}): Promise<NbdfuseMount> {
  const nbdfuse = requireTool('nbdfuse', 'libnbd-bin');
  const fusermount = requireTool('fusermount3', 'fuse3');
  const losetup = requireTool('losetup', 'mount');
  const mountBin = requireTool('mount', 'mount');
  const umount = requireTool('umount', 'mount');
  const dir = scratchDir('nbdcrypt-fuse-');
  const fuseDir = join(dir.path, 'fuse');
  const mountpoint = join(dir.path, 'mnt');
  mkdirSync(fuseDir);
  mkdirSync(mountpoint);
  const file = join(fuseDir, 'nbd');

  let fuse: Proc | undefined;
  let fuseMounted = false;
  let loop = '';
  let mounted = false;

  const detach = async (): Promise<void> => {
    const errors: string[] = [];
    const step = (what: string, f: () => void) => {
      try {
        f();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
      }
    };
    if (mounted) step('umount', () => run(umount, [mountpoint], { timeoutMs: 120_000 }));
    mounted = false;
    if (loop) step('losetup -d', () => run(losetup, ['-d', loop]));
    loop = '';
    if (fuseMounted) step('fusermount3 -u', () => run(fusermount, ['-u', fuseDir], { timeoutMs: 60_000 }));
    fuseMounted = false;
    if (fuse) await fuse.stop(10_000);
    fuse = undefined;
    if (errors.length > 0) throw new Error(`nbdfuse stack teardown: ${errors.join('; ')}`);
  };

  const attach = async (): Promise<void> => {
    try {
      fuse = startProcess(nbdfuse, [file, uri]);
      const proc = fuse;
      await waitFor('nbdfuse to expose the export', () => {
        if (proc.child.exitCode !== null) throw new Error(`nbdfuse exited: ${proc.stderr().trim()}`);
        return existsSync(file) && (opts.expectedSize === undefined || statSync(file).size === opts.expectedSize);
      }, 30_000);
      fuseMounted = true;
      loop = run(losetup, ['-f', '--show', ...(opts.readOnly ? ['-r'] : []), file]).stdout.trim();
      if (opts.mkfs === 'ext4') run(requireTool('mkfs.ext4', 'e2fsprogs'), ['-q', '-F', loop], { timeoutMs: 300_000 });
      if (opts.mkfs === 'xfs') run(requireTool('mkfs.xfs', 'xfsprogs'), ['-q', '-f', loop], { timeoutMs: 300_000 });
      opts = { ...opts, mkfs: undefined }; // format once; attach() again only mounts
      run(mountBin, [...(opts.readOnly ? ['-o', 'ro'] : []), loop, mountpoint], { timeoutMs: 120_000 });
      mounted = true;
    } catch (e) {
      await detach().catch(() => undefined);
      throw e;
    }
  };

  await attach().catch((e: unknown) => {
    dir.remove();
    throw e;
  });
  return {
    mountpoint,
    get loopDevice() {
      return loop;
    },
    detach,
    attach,
    cleanup: async () => {
      try {
        await detach();
      } finally {
        dir.remove();
      }
    },
  };
}
