/**
 * Header backup and restore, compatible with cryptsetup luksHeaderBackup/luksHeaderRestore:
 * a backup is the first 2·hdr_size + keyslots_size bytes of the device (both header copies
 * and the keyslots area). A backup is validated completely (checksums, metadata, fits the
 * device) before restore writes anything.
 * LUKS1 headers and backups go to luks1-header-backup.ts.
 * Spec: docs/formats.md (LUKS2 layout); cryptsetup(8) luksHeaderBackup.
 */
import { checkWritable, type BlockDevice } from '../block/block-device.js';
import { MemoryDevice } from '../block/memory-device.js';
import { NbdcryptError } from '../errors.js';
import { isLuks1 } from './luks1-header.js';
import { backupLuks1Header, restoreLuks1Header } from './luks1-header-backup.js';
import { isLuks1Device } from './luks1-volume.js';
import { dataSegment, loadHeader, repairHeader, type LoadedHeader } from './luks2-volume-state.js';

/** The header and keyslot areas (2·hdr_size + keyslots_size bytes), as cryptsetup luksHeaderBackup saves them. */
export async function backupHeader(dev: BlockDevice): Promise<Buffer> {
  if (await isLuks1Device(dev)) return backupLuks1Header(dev);
  const l = await loadHeader(dev);
  return dev.read(0, 2 * l.fields.hdrSize + l.meta.keyslotsSize);
}

/** Validates `backup` completely, then writes it over the device's header and keyslot areas. */
export async function restoreHeader(dev: BlockDevice, backup: Buffer, opts: { force?: boolean } = {}): Promise<void> {
  checkWritable(dev, 'restore header');
  if (isLuks1(backup)) {
    const current = await loadHeader(dev).catch(() => undefined);
    return restoreLuks1Header(dev, backup, { force: opts.force, currentLuks2Uuid: current?.fields.uuid });
  }
  const mem = new MemoryDevice(backup.length);
  await mem.write(0, backup);
  let b: LoadedHeader;
  try {
    b = await loadHeader(mem);
  } catch (e) {
    const why = (e as Error).message.replace(/; restore a header backup with 'nbdcrypt header restore'/, '');
    throw new NbdcryptError('EBADHDR', `the header backup is not usable (${why}); nothing was written`);
  } finally {
    await mem.close();
  }
  const seg = dataSegment(b.meta);
  const span = 2 * b.fields.hdrSize + b.meta.keyslotsSize;
  if (backup.length < span) throw new NbdcryptError('EBADHDR', `the header backup has ${backup.length} bytes but its metadata needs ${span}; nothing was written`);
  if (dev.size < span) throw new NbdcryptError('EUSAGE', `the device (${dev.size} bytes) is smaller than the ${span}-byte header area of the backup; nothing was written`);
  if (seg.offset > 0 && dev.size < seg.offset) throw new NbdcryptError('EUSAGE', `the device (${dev.size} bytes) is smaller than the backup's data offset ${seg.offset}; nothing was written`);
  if (!opts.force) {
    let current: LoadedHeader | undefined;
    try {
      current = await loadHeader(dev);
    } catch {
      current = undefined;
    }
    if (current && current.fields.uuid !== b.fields.uuid) {
      throw new NbdcryptError('EEXIST', `the device holds a different LUKS2 volume (UUID ${current.fields.uuid}, backup ${b.fields.uuid}); use --force to replace its header; nothing was written`);
    }
    if (!current && (await isLuks1Device(dev))) {
      throw new NbdcryptError('EEXIST', 'the device holds a LUKS1 volume and the backup is LUKS2; use --force to replace its header; nothing was written');
    }
  }
  await dev.write(0, backup.subarray(0, span));
  await dev.flush();
  await repairHeader(dev, b);
}
