/**
 * LUKS1 header backup and restore, compatible with cryptsetup luksHeaderBackup /
 * luksHeaderRestore on LUKS1: a backup is the header and every keyslot area, from byte 0 to
 * the end of the last area (LUKS_device_sectors), padded with zeroes to a multiple of 4096;
 * the unused bytes between the 592-byte header and the first keyslot area are zeroed so a
 * backup carries no stale signatures. Restore checks the backup completely, refuses a device
 * whose LUKS1 header has another payload offset or key size (as cryptsetup does), and writes
 * the header and keyslot areas only, never the payload.
 * Spec: docs/formats.md (LUKS1 header); cryptsetup(8) luksHeaderBackup.
 */
import type { BlockDevice } from '../block/block-device.js';
import { NbdcryptError } from '../errors.js';
import { headerSectors, parseLuks1Header, LUKS1_ALIGN_KEYSLOTS, LUKS1_PHDR_SIZE, type Luks1Header } from './luks1-header.js';
import { isLuks1Device, loadLuks1Header } from './luks1-volume.js';

export async function backupLuks1Header(dev: BlockDevice): Promise<Buffer> {
  const h = await loadLuks1Header(dev);
  const used = headerSectors(h) * 512;
  const out = Buffer.alloc(Math.ceil(used / 4096) * 4096);
  (await dev.read(0, used)).copy(out);
  if (h.keyslots[0]!.keyMaterialOffset * 512 === LUKS1_ALIGN_KEYSLOTS) out.fill(0, LUKS1_PHDR_SIZE, LUKS1_ALIGN_KEYSLOTS);
  return out;
}

/**
 * Validates `backup`, then writes its header and keyslot areas over the device's.
 * `currentLuks2Uuid` is the UUID of a LUKS2 header on the device, if any: another volume is
 * only replaced with `force`.
 */
export async function restoreLuks1Header(dev: BlockDevice, backup: Buffer, opts: { force?: boolean; currentLuks2Uuid?: string }): Promise<void> {
  let b: Luks1Header;
  try {
    b = parseLuks1Header(backup.subarray(0, LUKS1_PHDR_SIZE));
  } catch (e) {
    throw new NbdcryptError('EBADHDR', `the header backup is not usable (${(e as Error).message}); nothing was written`);
  }
  const span = headerSectors(b) * 512;
  if (backup.length < span) throw new NbdcryptError('EBADHDR', `the LUKS1 header backup has ${backup.length} bytes but its keyslot areas need ${span}; nothing was written`);
  if (dev.size < Math.max(span, b.payloadOffset * 512)) throw new NbdcryptError('EUSAGE', `the device (${dev.size} bytes) is smaller than the backup's header area and payload offset; nothing was written`);
  let current: Luks1Header | undefined;
  if (await isLuks1Device(dev)) current = await loadLuks1Header(dev).catch(() => undefined);
  if (current && (current.payloadOffset !== b.payloadOffset || current.keyBytes !== b.keyBytes)) {
    throw new NbdcryptError('EUSAGE', `the device's LUKS1 header has payload offset ${current.payloadOffset} and a ${current.keyBytes * 8}-bit key, the backup ${b.payloadOffset} and ${b.keyBytes * 8} bits; it belongs to another volume; nothing was written`);
  }
  const other = current && current.uuid !== b.uuid ? current.uuid : opts.currentLuks2Uuid;
  if (other !== undefined && other !== b.uuid && !opts.force) {
    throw new NbdcryptError('EEXIST', `the device holds a different LUKS volume (UUID ${other}, backup ${b.uuid}); use --force to replace its header; nothing was written`);
  }
  await dev.write(0, backup.subarray(0, span));
  await dev.flush();
}
