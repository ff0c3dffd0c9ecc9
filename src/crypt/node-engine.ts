/**
 * The portable XTS engine: node:crypto's 'aes-256-xts' (OpenSSL), one cipher object per
 * sector because the tweak changes every sector. Correct everywhere Node runs, but the
 * per-call overhead caps it far below the CPU's AES speed with small sectors, which is why
 * the native engine exists. Its async variant works in slices so the event loop keeps
 * breathing. Spec: IEEE Std 1619-2018; tweak rule docs/formats.md (LUKS2 data segment).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { NbdcryptError } from '../errors.js';
import type { XtsCipher } from './xts-cipher.js';
import { checkCall, writeTweak, yieldToLoop } from './xts-args.js';

/** Bytes processed between event-loop turns in the async variant (~0.1-1 ms of work). */
const SLICE = 64 * 1024;

export function createNodeEngine(key: Buffer): XtsCipher {
  const k = Buffer.alloc(key.length);
  key.copy(k);
  const iv = Buffer.alloc(16);
  let open = true;

  const run = (enc: boolean, buf: Buffer, firstSector: number, sectorSize: number, from: number, to: number): void => {
    const per = sectorSize / 512;
    for (let off = from; off < to; off += sectorSize) {
      writeTweak(iv, firstSector + (off / sectorSize) * per);
      const c = enc ? createCipheriv('aes-256-xts', k, iv) : createDecipheriv('aes-256-xts', k, iv);
      const out = c.update(buf.subarray(off, off + sectorSize));
      out.copy(buf, off);
      c.final();
    }
  };
  const check = (buf: Buffer, firstSector: number, sectorSize: number): void => {
    if (!open) throw new NbdcryptError('ECLOSED', 'xts cipher (node engine): already destroyed');
    checkCall(buf, firstSector, sectorSize);
  };
  const runAsync = async (enc: boolean, buf: Buffer, firstSector: number, sectorSize: number): Promise<void> => {
    check(buf, firstSector, sectorSize);
    const slice = Math.max(SLICE, sectorSize);
    for (let off = 0; off < buf.length; off += slice) {
      if (off > 0) await yieldToLoop();
      if (!open) throw new NbdcryptError('ECLOSED', 'xts cipher (node engine): destroyed during an operation');
      run(enc, buf, firstSector, sectorSize, off, Math.min(buf.length, off + slice));
    }
  };

  return {
    engine: 'node',
    encrypt(buf, firstSector, sectorSize) {
      check(buf, firstSector, sectorSize);
      run(true, buf, firstSector, sectorSize, 0, buf.length);
    },
    decrypt(buf, firstSector, sectorSize) {
      check(buf, firstSector, sectorSize);
      run(false, buf, firstSector, sectorSize, 0, buf.length);
    },
    encryptAsync: (buf, firstSector, sectorSize) => runAsync(true, buf, firstSector, sectorSize),
    decryptAsync: (buf, firstSector, sectorSize) => runAsync(false, buf, firstSector, sectorSize),
    destroy() {
      open = false;
      k.fill(0);
    },
  };
}
