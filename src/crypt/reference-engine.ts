/**
 * Reference XTS-AES-256 written straight from the standard, over @noble/ciphers' raw AES
 * block functions: T = E_K2(tweak); per 16-byte block C = E_K1(P ⊕ T) ⊕ T; T = T·α. Slow
 * (pure JS) and only for tests: it is the independent oracle the OpenSSL-based engines are
 * checked against. Sector sizes are multiples of 16, so ciphertext stealing never applies.
 * Spec: IEEE Std 1619-2018 §5.3 (encryption), §5.4 (decryption), §5.2 (α multiplication).
 */
import { unsafe } from '@noble/ciphers/aes.js';
import { NbdcryptError } from '../errors.js';
import type { XtsCipher } from './xts-cipher.js';
import { checkCall, mulAlpha, writeTweak, yieldToLoop } from './xts-args.js';

export function createReferenceEngine(key: Buffer): XtsCipher {
  let k1 = unsafe.expandKeyLE(key.subarray(0, 32));
  let k1d = unsafe.expandKeyDecLE(key.subarray(0, 32));
  let k2 = unsafe.expandKeyLE(key.subarray(32, 64));
  const iv = Buffer.alloc(16);
  const t = new Uint8Array(16);
  const blk = new Uint8Array(16);
  let open = true;

  const unit = (enc: boolean, buf: Buffer, off: number, len: number, sector: number): void => {
    writeTweak(iv, sector);
    t.set(iv);
    unsafe.encryptBlock(k2, t);
    for (let p = off; p < off + len; p += 16) {
      for (let i = 0; i < 16; i++) blk[i] = buf[p + i]! ^ t[i]!;
      if (enc) unsafe.encryptBlock(k1, blk);
      else unsafe.decryptBlock(k1d, blk);
      for (let i = 0; i < 16; i++) buf[p + i] = blk[i]! ^ t[i]!;
      mulAlpha(t);
    }
  };
  const check = (buf: Buffer, firstSector: number, sectorSize: number): void => {
    if (!open) throw new NbdcryptError('ECLOSED', 'xts cipher (reference engine): already destroyed');
    checkCall(buf, firstSector, sectorSize);
  };
  const run = (enc: boolean, buf: Buffer, firstSector: number, sectorSize: number): void => {
    check(buf, firstSector, sectorSize);
    const per = sectorSize / 512;
    for (let off = 0, i = 0; off < buf.length; off += sectorSize, i++) unit(enc, buf, off, sectorSize, firstSector + i * per);
  };
  const runAsync = async (enc: boolean, buf: Buffer, firstSector: number, sectorSize: number): Promise<void> => {
    check(buf, firstSector, sectorSize);
    const per = sectorSize / 512;
    for (let off = 0, i = 0; off < buf.length; off += sectorSize, i++) {
      if (i > 0 && i % 4 === 0) await yieldToLoop();
      if (!open) throw new NbdcryptError('ECLOSED', 'xts cipher (reference engine): destroyed during an operation');
      unit(enc, buf, off, sectorSize, firstSector + i * per);
    }
  };

  return {
    engine: 'reference',
    encrypt: (buf, firstSector, sectorSize) => run(true, buf, firstSector, sectorSize),
    decrypt: (buf, firstSector, sectorSize) => run(false, buf, firstSector, sectorSize),
    encryptAsync: (buf, firstSector, sectorSize) => runAsync(true, buf, firstSector, sectorSize),
    decryptAsync: (buf, firstSector, sectorSize) => runAsync(false, buf, firstSector, sectorSize),
    destroy() {
      open = false;
      k1.fill(0);
      k1d.fill(0);
      k2.fill(0);
      k1 = k1d = k2 = new Uint32Array(0);
      t.fill(0);
      blk.fill(0);
    },
  };
}
