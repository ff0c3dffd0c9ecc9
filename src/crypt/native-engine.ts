/**
 * The fast XTS engine: the N-API addon in native/ (native/src/xts.c), built by `npm install`.
 * One call encrypts a whole request of consecutive sectors with a reused OpenSSL EVP context,
 * setting only the IV per sector; the async variant runs on the libuv thread pool so the event
 * loop never waits on AES. The addon is optional: if it is missing or fails to load, the
 * reason is reported by nativeLoadError() and xts-cipher.ts falls back to the node engine.
 * Spec: IEEE Std 1619-2018; tweak rule reference/luks2.md §0; DESIGN.md "Cipher engines".
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NbdcryptError } from '../errors.js';
import type { XtsCipher } from './xts-cipher.js';
import { checkCall } from './xts-args.js';

/** Opaque key handle owned by the addon (an N-API external). */
type KeyHandle = object & { readonly __nativeKey: unique symbol };

/** What native/src/xts.c exports. */
export interface NativeAddon {
  newKey(key: Uint8Array): KeyHandle;
  freeKey(h: KeyHandle): void;
  cryptSync(h: KeyHandle, encrypt: boolean, src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number): void;
  cryptAsync(h: KeyHandle, encrypt: boolean, src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number): Promise<void>;
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

/**
 * Native-only extra on the cipher object: encrypt or decrypt `src` into `dst` (same length,
 * not overlapping) in one pass, so EncryptedDevice need not copy a write's plaintext, or a
 * stored ciphertext it may only look at, first. Sync for small buffers (`sync` true), else on
 * the thread pool.
 */
export const cryptInto = Symbol('nbdcrypt.cryptInto');
export type CryptInto = (encrypt: boolean, src: Buffer, dst: Buffer, firstSector: number, sectorSize: number, sync: boolean) => Promise<void> | void;

export function createNativeEngine(key: Buffer): XtsCipher & { [cryptInto]: CryptInto } {
  const a = loadNative();
  if (!a) throw new NbdcryptError('ENOTSUP', `native cipher engine unavailable: ${loadError}; use the node engine or run 'npm rebuild'`);
  let h: KeyHandle | undefined = a.newKey(key);
  const handle = (buf: Buffer, firstSector: number, sectorSize: number): KeyHandle => {
    if (h === undefined) throw new NbdcryptError('ECLOSED', 'xts cipher (native engine): already destroyed');
    checkCall(buf, firstSector, sectorSize);
    return h;
  };
  return {
    engine: 'native',
    encrypt: (buf, firstSector, sectorSize) => a.cryptSync(handle(buf, firstSector, sectorSize), true, buf, buf, firstSector, sectorSize),
    decrypt: (buf, firstSector, sectorSize) => a.cryptSync(handle(buf, firstSector, sectorSize), false, buf, buf, firstSector, sectorSize),
    encryptAsync: async (buf, firstSector, sectorSize) => a.cryptAsync(handle(buf, firstSector, sectorSize), true, buf, buf, firstSector, sectorSize),
    decryptAsync: async (buf, firstSector, sectorSize) => a.cryptAsync(handle(buf, firstSector, sectorSize), false, buf, buf, firstSector, sectorSize),
    destroy() {
      if (h !== undefined) a.freeKey(h);
      h = undefined;
    },
    [cryptInto]: (encrypt, src, dst, firstSector, sectorSize, sync) => {
      const k = handle(src, firstSector, sectorSize);
      return sync ? a.cryptSync(k, encrypt, src, dst, firstSector, sectorSize) : a.cryptAsync(k, encrypt, src, dst, firstSector, sectorSize);
    },
  };
}
