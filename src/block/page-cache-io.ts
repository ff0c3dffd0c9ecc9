/**
 * Reads and writes that complete at once when the page cache allows, without the libuv thread
 * pool: preadv2/pwritev2 with RWF_NOWAIT from the native addon (native/src/page-cache-io.c).
 * A thread-pool round trip costs more than a cached 4 KiB read itself (figures:
 * docs/performance.md, File target), so
 * FileDevice tries this first and uses the pool only for what would wait (EAGAIN), for the
 * rest of a short transfer, and when the addon or the kernel lacks it.
 * FileFastPaths.nowaitIo = false turns it off (to compare, or to rule it out). Also here:
 * readahead off.
 */
import { constants } from 'node:os';
import { loadNative } from '../native-addon.js';

export interface PageCacheIo {
  /** Bytes moved (possibly short; 0 at end of file), or undefined when it would have to wait. */
  read(fd: number, buf: Buffer, offset: number): number | undefined;
  write(fd: number, buf: Buffer, offset: number): number | undefined;
}

/**
 * The non-blocking I/O for one file, or undefined without the addon. After an error other
 * than EAGAIN (no RWF_NOWAIT support, say) that direction answers undefined for good: the
 * pool path then does the work and reports real I/O errors in Node's words.
 */
export function pageCacheIo(): PageCacheIo | undefined {
  const a = loadNative();
  if (!a || typeof a.preadNoWait !== 'function') return undefined;
  // Each direction is given up on its own: buffered RWF_NOWAIT writes are refused
  // (EOPNOTSUPP) by filesystems that support RWF_NOWAIT reads, ext4 on Linux 6.x among them.
  const usable = { read: true, write: true };
  const attempt = (dir: 'read' | 'write', fd: number, buf: Buffer, offset: number): number | undefined => {
    if (!usable[dir]) return undefined;
    const r = dir === 'read' ? a.preadNoWait(fd, buf, offset) : a.pwriteNoWait(fd, buf, offset);
    if (r >= 0) return r;
    if (r !== -constants.errno.EAGAIN) usable[dir] = false;
    return undefined;
  };
  return {
    read: (fd, buf, offset) => attempt('read', fd, buf, offset),
    write: (fd, buf, offset) => attempt('write', fd, buf, offset),
  };
}

/**
 * Turns the kernel's readahead off for one open file (POSIX_FADV_RANDOM); returns whether it
 * did (FileDevice skips it when FileFastPaths.readahead is set). The NBD client above reads ahead already, and
 * on Linux 6.x readahead fills the page cache with large folios, into which every later 4 KiB
 * write costs a walk over the whole folio, so random writes after a sequential read slow down
 * severalfold. The price is slower cold sequential reads at queue depth 1; at queue depth 16
 * they are as fast or faster (figures: docs/performance.md, File target).
 */
export function adviseNoReadahead(fd: number): boolean {
  const a = loadNative();
  return a !== undefined && typeof a.fadviseRandom === 'function' && a.fadviseRandom(fd) === 0;
}
