/**
 * The native engine for every spec but aes-xts-plain64 with a 512-bit key: the addon's
 * newSectorKey / sectorCrypt* (native/src/sector-ciphers.c), Twofish and Serpent in C and AES
 * over OpenSSL EVP, one call per request, async on the libuv thread pool. Like
 * native-engine.ts it offers the one-pass cryptInto that EncryptedDevice uses.
 * Spec: see native/src/sector-modes.h.
 */
import { NbdcryptError } from '../errors.js';
import { loadNative, nativeLoadError, type SectorKeyHandle } from '../native-addon.js';
import type { CipherSpec } from './cipher-spec.js';
import { cryptInto, type CryptInto } from './native-engine.js';
import type { SectorCipher } from './sector-cipher.js';
import { checkCall } from './xts-args.js';

/**
 * Event-loop budget per synchronous call, about 0.3-0.5 ms of work: AES-NI CBC decryption
 * runs at GB/s, Twofish and Serpent at a few hundred MB/s.
 */
function syncMaxOf(spec: CipherSpec): number {
  return spec.cipher === 'aes' ? 256 * 1024 : 64 * 1024;
}

export function createNativeSectorEngine(spec: CipherSpec, key: Buffer, ivKey: Buffer | undefined): SectorCipher & { [cryptInto]: CryptInto } {
  const a = loadNative();
  if (!a) throw new NbdcryptError('ENOTSUP', `native cipher engine unavailable: ${nativeLoadError()}; use the node engine or run 'npm rebuild'`);
  let h: SectorKeyHandle | undefined = a.newSectorKey(spec.cipher, spec.mode, spec.iv, key, ivKey ?? null);
  const handle = (buf: Buffer, firstSector: number, sectorSize: number): SectorKeyHandle => {
    if (h === undefined) throw new NbdcryptError('ECLOSED', `${spec.name} cipher (native engine): already destroyed`);
    checkCall(buf, firstSector, sectorSize);
    return h;
  };
  return {
    engine: 'native',
    syncMax: syncMaxOf(spec),
    encrypt: (buf, firstSector, sectorSize) => a.sectorCryptSync(handle(buf, firstSector, sectorSize), true, buf, buf, firstSector, sectorSize),
    decrypt: (buf, firstSector, sectorSize) => a.sectorCryptSync(handle(buf, firstSector, sectorSize), false, buf, buf, firstSector, sectorSize),
    encryptAsync: async (buf, firstSector, sectorSize) => a.sectorCryptAsync(handle(buf, firstSector, sectorSize), true, buf, buf, firstSector, sectorSize),
    decryptAsync: async (buf, firstSector, sectorSize) => a.sectorCryptAsync(handle(buf, firstSector, sectorSize), false, buf, buf, firstSector, sectorSize),
    destroy() {
      if (h !== undefined) a.freeSectorKey(h);
      h = undefined;
    },
    [cryptInto]: (encrypt, src, dst, firstSector, sectorSize, sync) => {
      const k = handle(src, firstSector, sectorSize);
      return sync ? a.sectorCryptSync(k, encrypt, src, dst, firstSector, sectorSize) : a.sectorCryptAsync(k, encrypt, src, dst, firstSector, sectorSize);
    },
  };
}
