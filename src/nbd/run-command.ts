/**
 * Runs one checked transmission request against the BlockDevice. WRITE_ZEROES falls back to
 * writing zeroes when the device has no native zeroing, except that FAST_ZERO asks for a quick
 * ENOTSUP instead (the client then writes itself); CACHE is a hint with nothing to warm.
 * Spec: docs/formats.md (NBD transmission).
 */
import { NbdcryptError, isNbdcryptError } from '../errors.js';
import type { BlockDevice } from '../block/block-device.js';
import { writeZeroChunks } from '../block/write-zeroes.js';
import type { Request } from './codec.js';
import { CF, Cmd } from './protocol.js';


/** Resolves with the data for a READ, with nothing for every other command. */
export function runCommand(dev: BlockDevice, h: Request, offset: number, payload: Buffer | undefined): Promise<Buffer | void> {
  const fua = (h.flags & CF.FUA) !== 0;
  try {
    switch (h.type) {
      case Cmd.READ:
        return dev.read(offset, h.length);
      case Cmd.WRITE:
        // Given, not lent: the device may encrypt it in place and releases it to the pool.
        return dev.write(offset, payload!, fua, true);
      case Cmd.FLUSH:
        return dev.flush();
      case Cmd.TRIM:
        return dev.trim(offset, h.length).then(() => (fua ? dev.flush() : undefined));
      case Cmd.WRITE_ZEROES:
        return writeZeroes(dev, offset, h.length, fua, (h.flags & CF.FAST_ZERO) !== 0);
      default: // CACHE: a prefetch hint; the range was checked, nothing to warm.
        return Promise.resolve();
    }
  } catch (e) {
    return Promise.reject(e);
  }
}

async function writeZeroes(dev: BlockDevice, offset: number, length: number, fua: boolean, fast: boolean): Promise<void> {
  if (!dev.caps.zeroes) {
    // FAST_ZERO asks us to fail rather than be as slow as a write; the client then writes.
    if (fast) throw new NbdcryptError('ENOTSUP', 'write zeroes: the device has no fast zeroing');
  }
  try {
    await dev.writeZeroes(offset, length, fua);
  } catch (e) {
    if (!isNbdcryptError(e, 'ENOTSUP')) throw e;
    await writeZeroChunks((at, zeroes) => dev.write(at, zeroes), offset, length, dev.blockSize.preferred);
    if (fua) await dev.flush();
  }
}
