/**
 * The VM test's guest image (Debian kernel + initramfs), built by assemble-image.sh from
 * Debian packages and cached between runs. The cache key is a hash of the three guest
 * sources, so editing the init or the helpers rebuilds; an unchanged tree reuses the image
 * (a build takes ~20 s and ~75 MB of downloads). Cache: $NBDCRYPT_VM_CACHE, else
 * /var/cache/nbdcrypt-vm when writable (survives fresh clones in CI), else .vm-cache/.
 * Recipe: test/vm/README.md.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../peers/tools.js';

/** test/vm/ in the source tree (this file runs from dist/test/vm/). */
export const vmSourceDir = fileURLToPath(new URL('../../../test/vm/', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export interface VmImage {
  dir: string;
  kernel: string;
  initrd: string;
  manifest: string;
  /** True when this call built it (false: taken from the cache). */
  built: boolean;
  buildMs: number;
}

export function vmCacheRoot(): string {
  if (process.env.NBDCRYPT_VM_CACHE) return process.env.NBDCRYPT_VM_CACHE;
  const system = '/var/cache/nbdcrypt-vm';
  try {
    mkdirSync(system, { recursive: true });
    accessSync(system, constants.W_OK);
    return system;
  } catch {
    return join(repoRoot, '.vm-cache');
  }
}

function imageKey(): string {
  const h = createHash('sha256');
  for (const f of ['assemble-image.sh', 'guest-init.sh', 'guest-lib.sh']) h.update(readFileSync(join(vmSourceDir, f)));
  return h.digest('hex').slice(0, 16);
}

/** Returns the cached image, building it first if needed (bounded to 5 minutes). */
export function ensureVmImage(): VmImage {
  const root = vmCacheRoot();
  mkdirSync(root, { recursive: true });
  const dir = join(root, `image-${imageKey()}`);
  const paths = { dir, kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.cpio.gz'), manifest: join(dir, 'manifest.txt') };
  if (existsSync(paths.manifest)) return { ...paths, built: false, buildMs: 0 };
  const t0 = Date.now();
  run('bash', [join(vmSourceDir, 'assemble-image.sh'), dir, join(vmSourceDir, 'guest-init.sh'), join(vmSourceDir, 'guest-lib.sh')], {
    timeoutMs: 300_000,
  });
  // Older images (other keys) are dead weight: keep the cache at one image.
  for (const name of readdirSync(root)) {
    const p = join(root, name);
    if (name.startsWith('image-') && p !== dir && statSync(p).isDirectory()) rmSync(p, { recursive: true, force: true });
  }
  return { ...paths, built: true, buildMs: Date.now() - t0 };
}
