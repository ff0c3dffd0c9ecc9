/**
 * Human sizes on the command line: `4096`, `512K`, `1G`, `1.5T`, with optional `B`/`iB`
 * suffix (`1GiB`). Binary multiples (K = 1024) as in qemu-img, nbdkit and truncate(1).
 */
import { NbdcryptError } from './errors.js';

const units: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50 };

/** Parses a size in bytes; throws EUSAGE naming `what` if it is not a whole, safe number. */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)(?:i?[bB])?\s*$/.exec(text);
  if (!m) throw new NbdcryptError('EUSAGE', `${what} '${text}' is not a size; use bytes or a K/M/G/T suffix, e.g. 4096 or 1G`);
  const bytes = Number(m[1]) * units[m[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(bytes)) {
    throw new NbdcryptError('EUSAGE', `${what} '${text}' is not a whole number of bytes below 2^53`);
  }
  return bytes;
}
