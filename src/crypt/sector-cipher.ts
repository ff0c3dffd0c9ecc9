/**
 * SectorCipher: encrypts and decrypts buffers of consecutive sectors in place for one volume
 * key and one cipher spec (cipher-spec.ts), the interface EncryptedDevice and the LUKS
 * keyslot code use whatever the cipher. aes-xts-plain64 with a 512-bit key (every volume
 * nbdcrypt formats) goes to the AES-XTS engines of xts-cipher.ts, unchanged; every other spec
 * to native-sector-engine.ts (the addon) or, without it, js-sector-engine.ts (node:crypto for
 * AES, portable TypeScript Twofish and Serpent). Sector numbers are 512-byte units whatever
 * the sector size (docs/formats.md, LUKS2 data segment).
 */
import { createHash } from 'node:crypto';
import { checkKeySize, isAesXtsPlain64, parseCipherSpec, type CipherSpec } from './cipher-spec.js';
import { createJsSectorEngine } from './js-sector-engine.js';
import { createNativeSectorEngine } from './native-sector-engine.js';
import { nodeAesUnits } from './node-sector-units.js';
import { blockUnits } from './sector-modes.js';
import { createXtsCipher, defaultEngine } from './xts-cipher.js';

export type EngineName = 'native' | 'node' | 'reference';

export interface SectorCipher {
  readonly engine: EngineName;
  /**
   * Largest buffer worth ciphering synchronously on the event loop; undefined for the
   * AES-XTS engines (EncryptedDevice's own limit, tuned for them).
   */
  readonly syncMax?: number;
  /** In place. buf.length is a multiple of sectorSize; firstSector is the 512-byte-unit IV number of buf[0] (iv_tweak already added); unit i uses firstSector + i*sectorSize/512. */
  encrypt(buf: Buffer, firstSector: number, sectorSize: number): void;
  decrypt(buf: Buffer, firstSector: number, sectorSize: number): void;
  encryptAsync(buf: Buffer, firstSector: number, sectorSize: number): Promise<void>;
  decryptAsync(buf: Buffer, firstSector: number, sectorSize: number): Promise<void>;
  /** Wipes the key copy; later calls throw ECLOSED. */
  destroy(): void;
}

/**
 * A cipher for `key` (copied; wipe the caller's copy yourself) under `spec` (a spec or a
 * cryptsetup string). An unsupported spec or key size is an EBADHDR NbdcryptError.
 */
export function createSectorCipher(spec: CipherSpec | string, key: Buffer, engine: EngineName = defaultEngine()): SectorCipher {
  const s = typeof spec === 'string' ? parseCipherSpec(spec) : spec;
  if (!(key instanceof Uint8Array)) throw new TypeError('key must be a Buffer');
  checkKeySize(s, key.length);
  if (isAesXtsPlain64(s) && key.length === 64) return createXtsCipher(key, engine);
  if (s.cipher === 'aes' && s.mode === 'xts' && key.subarray(0, key.length / 2).equals(key.subarray(key.length / 2))) {
    // As checkKey does for 512-bit keys: OpenSSL refuses them, so refuse on every engine.
    throw new RangeError('key: the two halves of an XTS key must differ (OpenSSL rejects duplicated XTS keys); use a random key');
  }
  if (engine !== 'native' && engine !== 'node' && engine !== 'reference') throw new RangeError(`engine must be native, node or reference, got ${String(engine)}`);
  // ESSIV keys its IV cipher with the hash of the whole volume key (both XTS halves).
  const ivKey = s.iv === 'essiv' ? createHash('sha256').update(key).digest() : undefined;
  try {
    if (engine === 'native') return createNativeSectorEngine(s, key, ivKey);
    const units = engine === 'node' && s.cipher === 'aes' ? nodeAesUnits(s, key, ivKey) : blockUnits(s, key, ivKey);
    return createJsSectorEngine(s, engine, units);
  } finally {
    ivKey?.fill(0);
  }
}
