/**
 * dm-crypt's sector modes in portable TypeScript over any BlockCipher: XTS, CBC and ECB per
 * sector, and the IV generators plain64 (LE64 of the 512-byte sector number), plain (its low
 * 32 bits) and ESSIV (plain64 encrypted with the same block cipher under sha256(volume key)).
 * The fallback for native/src/sector-modes.c, which does the same in C.
 * Spec: IEEE Std 1619-2018 §5 (XTS); NIST SP 800-38A §6.2 (CBC); Linux dm-crypt.rst (IVs).
 */
import { unsafe } from '@noble/ciphers/aes.js';
import type { BlockCipher } from './block-cipher.js';
import type { BlockCipherName, CipherSpec, IvGenerator } from './cipher-spec.js';
import { serpent } from './serpent.js';
import { twofish } from './twofish.js';
import { mulAlpha, writeTweak } from './xts-args.js';

/** Ciphers one sector unit buf[off, off+len) in place with its 16-byte IV (ignored by ecb). */
export type UnitFn = (enc: boolean, buf: Uint8Array, off: number, len: number, iv: Uint8Array) => void;

/** What a JS sector engine needs from a cipher family: the unit function and the ESSIV step. */
export interface SectorUnits {
  unit: UnitFn;
  /** ESSIV: encrypts the plain64 IV in place under the hash of the key. */
  essiv?: (iv: Uint8Array) => void;
  wipe(): void;
}

/** Writes the IV of 512-byte sector `sector` before ESSIV's encryption. */
export function writeIvBase(iv: Buffer, gen: IvGenerator, sector: number): void {
  if (gen === 'plain') {
    iv.fill(0);
    iv.writeUInt32LE(sector % 0x1_0000_0000, 0);
  } else if (gen === 'none') iv.fill(0);
  else writeTweak(iv, sector);
}

/** @noble/ciphers' raw AES as a BlockCipher (the reference engine's independent AES). */
function aesBlock(key: Uint8Array): BlockCipher {
  const ek = unsafe.expandKeyLE(key);
  const dk = unsafe.expandKeyDecLE(key);
  const b = new Uint8Array(16);
  const run = (enc: boolean, buf: Uint8Array, off: number): void => {
    b.set(buf.subarray(off, off + 16));
    if (enc) unsafe.encryptBlock(ek, b);
    else unsafe.decryptBlock(dk, b);
    buf.set(b, off);
  };
  return {
    encryptBlock: (buf, off) => run(true, buf, off),
    decryptBlock: (buf, off) => run(false, buf, off),
    wipe() {
      ek.fill(0);
      dk.fill(0);
      b.fill(0);
    },
  };
}

export function blockCipher(name: BlockCipherName, key: Uint8Array): BlockCipher {
  return name === 'twofish' ? twofish(key) : name === 'serpent' ? serpent(key) : aesBlock(key);
}

function xor16(dst: Uint8Array, d: number, src: Uint8Array, s: number): void {
  for (let i = 0; i < 16; i++) dst[d + i] = dst[d + i]! ^ src[s + i]!;
}

/** The units of `spec` over this file's block ciphers; ivKey is sha256(key) for ESSIV. */
export function blockUnits(spec: CipherSpec, key: Uint8Array, ivKey?: Uint8Array): SectorUnits {
  const half = spec.mode === 'xts' ? key.length / 2 : key.length;
  const data = blockCipher(spec.cipher, key.subarray(0, half));
  const tweak = spec.mode === 'xts' ? blockCipher(spec.cipher, key.subarray(half)) : undefined;
  const essivCipher = ivKey ? blockCipher(spec.cipher, ivKey) : undefined;
  const t = new Uint8Array(16);
  const prev = new Uint8Array(16);
  const ct = new Uint8Array(16);
  let unit: UnitFn;
  if (spec.mode === 'xts') {
    unit = (enc, buf, off, len, iv) => {
      t.set(iv);
      tweak!.encryptBlock(t, 0);
      for (let p = off; p < off + len; p += 16) {
        xor16(buf, p, t, 0);
        if (enc) data.encryptBlock(buf, p);
        else data.decryptBlock(buf, p);
        xor16(buf, p, t, 0);
        mulAlpha(t);
      }
    };
  } else if (spec.mode === 'cbc') {
    unit = (enc, buf, off, len, iv) => {
      prev.set(iv);
      for (let p = off; p < off + len; p += 16) {
        if (enc) {
          xor16(buf, p, prev, 0);
          data.encryptBlock(buf, p);
          prev.set(buf.subarray(p, p + 16));
        } else {
          ct.set(buf.subarray(p, p + 16));
          data.decryptBlock(buf, p);
          xor16(buf, p, prev, 0);
          prev.set(ct);
        }
      }
    };
  } else {
    unit = (enc, buf, off, len) => {
      for (let p = off; p < off + len; p += 16) {
        if (enc) data.encryptBlock(buf, p);
        else data.decryptBlock(buf, p);
      }
    };
  }
  return {
    unit,
    essiv: essivCipher ? (iv) => essivCipher.encryptBlock(iv, 0) : undefined,
    wipe() {
      data.wipe();
      tweak?.wipe();
      essivCipher?.wipe();
      for (const b of [t, prev, ct]) b.fill(0);
    },
  };
}
