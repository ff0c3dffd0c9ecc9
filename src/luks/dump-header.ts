/**
 * What `nbdcrypt dump` prints: the header as cryptsetup luksDump shows it, the JSON area as
 * stored, or the volume key after unlocking a keyslot. Reading the header never writes, so a
 * damaged copy is reported in one warning instead of being repaired.
 * Spec: docs/formats.md (LUKS2 dump text).
 */
import type { BlockDevice } from '../block/block-device.js';
import { log } from '../log.js';
import { formatDump, formatVolumeKeyDump } from './luks2-dump.js';
import { unlockVolumeKey, type UnlockOptions } from './luks2-unlock.js';
import { damagedCopyWarning, dataSegment, loadHeader, type LoadedHeader } from './luks2-volume-state.js';

async function loadWarning(dev: BlockDevice): Promise<LoadedHeader> {
  const l = await loadHeader(dev);
  const warning = damagedCopyWarning(l);
  if (warning) log.warn(warning);
  return l;
}

/** The JSON area of the copy in use, as stored (cryptsetup luksDump --dump-json-metadata). */
export async function dumpJsonMetadata(dev: BlockDevice): Promise<string> {
  return (await loadWarning(dev)).read!.chosen.json;
}

/** `cryptsetup luksDump` text for the device; with a passphrase, the `--dump-volume-key` form named `deviceName`. */
export async function dumpHeader(dev: BlockDevice, opts: UnlockOptions & { passphrase?: Buffer; deviceName?: string } = {}): Promise<string> {
  const l = await loadWarning(dev);
  if (opts.passphrase === undefined) return formatDump(l.fields, l.meta);
  const { key } = await unlockVolumeKey(dev, l, opts.passphrase, opts);
  try {
    return formatVolumeKeyDump(opts.deviceName ?? 'device', l.fields, dataSegment(l.meta), key);
  } finally {
    key.fill(0);
  }
}
