/**
 * The fast XTS engine: the N-API addon in native/ (native/src/xts.c), built by `npm install`.
 * One call encrypts a whole request of consecutive sectors with a reused OpenSSL EVP context,
 * setting only the IV per sector; the async variant runs on the libuv thread pool so the event
 * loop never waits on AES. The addon is optional: if it is missing or fails to load, the
 * reason is reported by nativeLoadError() and xts-cipher.ts falls back to the node engine.
 * Spec: IEEE Std 1619-2018; tweak rule docs/formats.md (LUKS2 data segment).
 */
import { NbdcryptError } from '../errors.js';
import { loadNative, nativeLoadError, type NativeAddon } from '../native-addon.js';
import type { XtsCipher } from './xts-cipher.js';
import { checkCall } from './xts-args.js';

/**
 * Native-only extra on the cipher object: encrypt or decrypt `src` into `dst` (same length,
 * not overlapping) in one pass, so EncryptedDevice need not copy a write's plaintext, or a
 * stored ciphertext it may only look at, first. Sync for small buffers (`sync` true), else on
 * the thread pool.
 */
export const cryptInto = Symbol('nbdcrypt.cryptInto');
export type CryptInto = (encrypt: boolean, src: Buffer, dst: Buffer, firstSector: number, sectorSize: number, sync: boolean) => Promise<void> | void;

/** The addon calls of one key family (xts.c's newKey handles or sector-ciphers.c's). */
export interface NativeCalls<H> {
  sync(h: H, encrypt: boolean, src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number): void;
  async(h: H, encrypt: boolean, src: Uint8Array, dst: Uint8Array, firstSector: number, sectorSize: number): Promise<void>;
  free(h: H): void;
}

/** A cipher over one addon key handle; `what` names it in errors ("xts cipher"). */
export function nativeCipher<H>(what: string, h0: H, calls: NativeCalls<H>, syncMax?: number): XtsCipher & { [cryptInto]: CryptInto } {
  let h: H | undefined = h0;
  const handle = (buf: Buffer, firstSector: number, sectorSize: number): H => {
    if (h === undefined) throw new NbdcryptError('ECLOSED', `${what} (native engine): already destroyed`);
    checkCall(buf, firstSector, sectorSize);
    return h;
  };
  return {
    engine: 'native',
    ...(syncMax === undefined ? {} : { syncMax }),
    encrypt: (buf, firstSector, sectorSize) => calls.sync(handle(buf, firstSector, sectorSize), true, buf, buf, firstSector, sectorSize),
    decrypt: (buf, firstSector, sectorSize) => calls.sync(handle(buf, firstSector, sectorSize), false, buf, buf, firstSector, sectorSize),
    encryptAsync: async (buf, firstSector, sectorSize) => calls.async(handle(buf, firstSector, sectorSize), true, buf, buf, firstSector, sectorSize),
    decryptAsync: async (buf, firstSector, sectorSize) => calls.async(handle(buf, firstSector, sectorSize), false, buf, buf, firstSector, sectorSize),
    destroy() {
      if (h !== undefined) calls.free(h);
      h = undefined;
    },
    [cryptInto]: (encrypt, src, dst, firstSector, sectorSize, sync) => {
      const k = handle(src, firstSector, sectorSize);
      return sync ? calls.sync(k, encrypt, src, dst, firstSector, sectorSize) : calls.async(k, encrypt, src, dst, firstSector, sectorSize);
    },
  };
}

/** A native loader or an ENOTSUP error saying why there is none. */
export function requireNative(): NativeAddon {
  const a = loadNative();
  if (!a) throw new NbdcryptError('ENOTSUP', `native cipher engine unavailable: ${nativeLoadError()}; use the node engine or run 'npm rebuild'`);
  return a;
}

export function createNativeEngine(key: Buffer): XtsCipher & { [cryptInto]: CryptInto } {
  const a = requireNative();
  return nativeCipher('xts cipher', a.newKey(key), { sync: a.cryptSync, async: a.cryptAsync, free: a.freeKey });
}
