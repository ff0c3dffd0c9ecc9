/**
 * The NBD_INFO_BLOCK_SIZE the front end advertises for a device that works in units of
 * `sectorSize` bytes: minimum 512 (requests of any alignment are correct, the layers below
 * read-modify-write partial sectors), preferred = the sector size (aligned requests take the
 * fast path), maximum = the largest payload the server accepts. So the command that builds
 * the stack only says what its sector size is, and the wire limits stay in nbd/.
 */
import type { BlockSizeInfo } from './codec.js';
import { MAX_PAYLOAD } from './protocol.js';

export function blockSizeFor(sectorSize: number): BlockSizeInfo {
  return { minimum: 512, preferred: sectorSize, maximum: MAX_PAYLOAD };
}
