/**
 * Opening a LUKS volume for serving. A LUKS1 header goes to luks1-volume.ts. For LUKS2: read
 * the header (either copy), unlock a keyslot with the passphrase, check that the data cipher
 * and key size are ones nbdcrypt serves (describeVolume), then repair a damaged or stale
 * header copy (only after a successful unlock, and only on a writable device).
 * Spec: docs/formats.md (LUKS2, LUKS1 header).
 */
import type { BlockDevice } from '../block/block-device.js';
import { log } from '../log.js';
import { isLuks1Device, openLuks1Volume } from './luks1-volume.js';
import { unlockVolumeKey, type UnlockOptions } from './luks2-unlock.js';
import { damagedCopyWarning, describeVolume, loadHeader, repairHeader, type OpenedVolume } from './luks2-volume-state.js';

export type { OpenedVolume } from './luks2-volume-state.js';
export type { UnlockOptions } from './luks2-unlock.js';

/**
 * Unlocks the volume with `passphrase` (all keyslots, or the one given). Writes nothing unless
 * it repairs a damaged header copy after a successful unlock; on a read-only device a damaged
 * copy is reported in one warning instead. The passphrase is not modified (the caller wipes
 * it); the returned volumeKey belongs to the caller, who wipes it too.
 */
export async function openVolume(dev: BlockDevice, passphrase: Buffer, opts: UnlockOptions = {}): Promise<OpenedVolume> {
  if (await isLuks1Device(dev)) return openLuks1Volume(dev, passphrase, opts);
  const l = await loadHeader(dev);
  const { key, slot } = await unlockVolumeKey(dev, l, passphrase, opts);
  try {
    const opened = describeVolume(l, dev, key, slot);
    if (dev.caps.readOnly) {
      const warning = damagedCopyWarning(l);
      if (warning) log.warn(warning);
    } else await repairHeader(dev, l);
    return opened;
  } catch (e) {
    key.fill(0);
    throw e;
  }
}
