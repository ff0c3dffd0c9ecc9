/**
 * Where things go in a LUKS2 volume made by nbdcrypt: cryptsetup's defaults (16 KiB metadata
 * copies, 16 MiB − 32 KiB of keyslot area, data at 16 MiB) and the keyslot-area allocator
 * (first 4096-aligned gap at or after 2·hdr_size, like LUKS2_find_area_gap).
 * Spec: docs/formats.md (LUKS2 layout, LUKS2 keyslots).
 */
import { NbdcryptError } from '../errors.js';
import type { Metadata } from './luks2-metadata.js';

export const DEFAULT_HDR_SIZE = 0x4000;
export const DEFAULT_DATA_OFFSET = 16 * 1024 * 1024;
export const DEFAULT_KEYSLOTS_SIZE = DEFAULT_DATA_OFFSET - 2 * DEFAULT_HDR_SIZE;

/** First free 4096-aligned gap of `size` bytes in the keyslots area, ignoring `except`. */
export function findAreaGap(meta: Metadata, hdrSize: number, size: number, except?: number): number {
  const used = meta.keyslots
    .filter((k) => k.id !== except)
    .map((k) => [k.areaOffset, k.areaOffset + k.areaSize] as const)
    .sort((a, b) => a[0] - b[0]);
  const limit = 2 * hdrSize + meta.keyslotsSize;
  let at = 2 * hdrSize;
  for (const [start, end] of used) {
    if (at + size <= start) break;
    at = Math.max(at, Math.ceil(end / 4096) * 4096);
  }
  if (at + size > limit) {
    throw new NbdcryptError('ENOTSUP', `no room for another keyslot area of ${size} bytes in the ${meta.keyslotsSize}-byte keyslots area; remove a keyslot first`);
  }
  return at;
}
