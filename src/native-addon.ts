/**
 * Loader of the N-API addon in native/ (built by `npm install`): AES-XTS batches, the other
 * sector ciphers (Twofish, Serpent, AES modes), prctl, and the file fast paths. Both block/ and
 * crypt/ use it, so it sits below both. The addon is optional: if it is missing or fails to
 * load, loadNative() returns undefined and nativeLoadError() says why; every caller has a
 * portable path.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Opaque key handle owned by the addon (an N-API external). */
export type KeyHandle = object & { readonly __nativeKey: unique symbol };
/** Opaque key handle of native/src/sector-ciphers.c (a type-tagged N-API external). */
export type SectorKeyHandle = object & { readonly __nativeSectorKey: unique symbol };

/** What native/src/xts.c exports. */
export interface NativeAddon {
  newKey(key: Uint8Array): KeyHandle;
  freeKey(h: KeyHandle): void;
  cryptSync(h: KeyHandle, encrypt: boolean, src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number): void;
  cryptAsync(h: KeyHandle, encrypt: boolean, src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number): Promise<void>;
  /** Twofish/Serpent/AES in xts, cbc or ecb (native/src/sector-ciphers.c); ivKey only for essiv. */
  newSectorKey(cipher: string, mode: string, ivgen: string, key: Uint8Array, ivKey: Uint8Array | null): SectorKeyHandle;
  freeSectorKey(h: SectorKeyHandle): void;
  sectorCryptSync(h: SectorKeyHandle, encrypt: boolean, src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number): void;
  sectorCryptAsync(h: SectorKeyHandle, encrypt: boolean, src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number): Promise<void>;
  setIoFlusher(): string | undefined;
  /** preadv2/pwritev2 with RWF_NOWAIT (native/src/page-cache-io.c): bytes moved, or -errno. */
  preadNoWait(fd: number, buf: Uint8Array, offset: number): number;
  pwriteNoWait(fd: number, buf: Uint8Array, offset: number): number;
  /** posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM) (native/src/page-cache-io.c): 0 or -errno. */
  fadviseRandom(fd: number): number;
  /** pwrite of each buffer at its offset, in order, in one thread-pool job (native/src/write-batch.c): bytes or -errno each. */
  pwriteBatch(fd: number, buffers: Uint8Array[], offsets: number[]): Promise<number[]>;
  /** fallocate(PUNCH_HOLE | KEEP_SIZE) on the thread pool (native/src/punch-hole.c): 0 or -errno. */
  punchHole(fd: number, offset: number, length: number): Promise<number>;
  /** flock(LOCK_EX | LOCK_NB) (native/src/file-lock.c): 0 or -errno. */
  flockExclusive(fd: number): number;
  /** Generic-netlink socket, bytes in and out, a unix stream pair, one unix datagram (native/src/netlink.c). */
  netlinkSocket(): number;
  netlinkSend(fd: number, bytes: Uint8Array): number;
  netlinkRecv(fd: number): Buffer;
  socketPair(): [number, number];
  /** SO_SNDBUFFORCE, else SO_SNDBUF (native/src/socket-buffer.c): the send buffer now in effect, or -errno. */
  setSendBuffer(fd: number, bytes: number): number;
  unixDatagram(path: string, bytes: Uint8Array): number;
  opensslVersion(): string;
  /** 'provider' (fast loop over the provider's dispatch table) or 'evp' (fallback). */
  path(): 'provider' | 'evp';
}

const ADDON = 'nbdcrypt_xts.node';
let addon: NativeAddon | undefined;
let loadError: string | undefined;
let tried = false;

/** The package root: the nearest directory above this module that has native/binding.gyp. */
function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'native', 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

/** The loaded addon, or undefined (then nativeLoadError() says why). */
export function loadNative(): NativeAddon | undefined {
  if (tried) return addon;
  tried = true;
  const root = packageRoot();
  const path = root && join(root, 'native', 'build', 'Release', ADDON);
  if (!path || !existsSync(path)) {
    loadError = 'native/build/Release/' + ADDON + ' is not built';
    return undefined;
  }
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (e) {
    loadError = `loading ${ADDON} failed: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`;
  }
  return addon;
}

/** Why the native engine is unavailable, or undefined when it loads. */
export function nativeLoadError(): string | undefined {
  loadNative();
  return loadError;
}

/**
 * Marks this process as an I/O flusher (prctl PR_SET_IO_FLUSHER, Linux ≥ 5.6) so memory
 * reclaim never waits on the writeback it is itself serving. Returns undefined on success,
 * else one line saying why not (needs CAP_SYS_RESOURCE; also fails without the addon).
 */
export function setIoFlusher(): string | undefined {
  const a = loadNative();
  if (!a) return `native addon unavailable: ${loadError}`;
  return a.setIoFlusher();
}

