/**
 * The native engine for every spec but aes-xts-plain64 with a 512-bit key: the addon's
 * newSectorKey / sectorCrypt* (native/src/sector-ciphers.c), Twofish and Serpent in C and AES
 * over OpenSSL EVP, one call per request, async on the libuv thread pool. Like
 * native-engine.ts it offers the one-pass cryptInto that EncryptedDevice uses.
 * Spec: see native/src/sector-modes.h.
 */
import type { CipherSpec } from './cipher-spec.js';
import { nativeCipher, requireNative, type cryptInto, type CryptInto } from './native-engine.js';
import type { SectorCipher } from './sector-cipher.js';

/**
 * Event-loop budget per synchronous call, about 0.3-0.5 ms of work: AES-NI CBC decryption
 * runs at GB/s, Twofish and Serpent at a few hundred MB/s.
 */
function syncMaxOf(spec: CipherSpec): number {
  return spec.cipher === 'aes' ? 256 * 1024 : 64 * 1024;
}

export function createNativeSectorEngine(spec: CipherSpec, key: Buffer, ivKey: Buffer | undefined): SectorCipher & { [cryptInto]: CryptInto } {
  const a = requireNative();
  const h = a.newSectorKey(spec.cipher, spec.mode, spec.iv, key, ivKey ?? null);
  return nativeCipher(`${spec.name} cipher`, h, { sync: a.sectorCryptSync, async: a.sectorCryptAsync, free: a.freeSectorKey }, syncMaxOf(spec));
}
