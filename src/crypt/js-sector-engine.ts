/**
 * The portable sector engine: runs a cipher family's per-sector unit function (sector-modes.ts
 * for Twofish, Serpent and reference AES; node-sector-units.ts for node:crypto AES) over a
 * buffer of consecutive sectors, computing each sector's IV. Its async variant works in
 * slices so the event loop keeps breathing, like the node XTS engine.
 * Spec: Linux dm-crypt.rst (IV generators).
 */
import { NbdcryptError } from '../errors.js';
import type { CipherSpec } from './cipher-spec.js';
import type { EngineName, SectorCipher } from './sector-cipher.js';
import { writeIvBase, type SectorUnits } from './sector-modes.js';
import { checkCall, yieldToLoop } from './xts-args.js';

/** Bytes processed between event-loop turns in the async variant, by default. */
const SLICE = 16 * 1024;

export function createJsSectorEngine(spec: CipherSpec, engine: Exclude<EngineName, 'native'>, units: SectorUnits, slice = SLICE): SectorCipher {
  const iv = Buffer.alloc(16);
  let open = true;
  const what = `${spec.name} cipher (${engine} engine)`;

  const run = (enc: boolean, buf: Buffer, firstSector: number, sectorSize: number, from: number, to: number): void => {
    const per = sectorSize / 512;
    for (let off = from; off < to; off += sectorSize) {
      writeIvBase(iv, spec.iv, firstSector + (off / sectorSize) * per);
      units.essiv?.(iv);
      units.unit(enc, buf, off, sectorSize, iv);
    }
  };
  const check = (buf: Buffer, firstSector: number, sectorSize: number): void => {
    if (!open) throw new NbdcryptError('ECLOSED', `${what}: already destroyed`);
    checkCall(buf, firstSector, sectorSize);
  };
  const runAsync = async (enc: boolean, buf: Buffer, firstSector: number, sectorSize: number): Promise<void> => {
    check(buf, firstSector, sectorSize);
    const step = Math.max(slice, sectorSize);
    for (let off = 0; off < buf.length; off += step) {
      if (off > 0) await yieldToLoop();
      if (!open) throw new NbdcryptError('ECLOSED', `${what}: destroyed during an operation`);
      run(enc, buf, firstSector, sectorSize, off, Math.min(buf.length, off + step));
    }
  };

  return {
    engine,
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
      if (open) units.wipe();
      open = false;
      iv.fill(0);
    },
  };
}
