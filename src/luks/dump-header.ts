/**
 * What `nbdcrypt dump` prints: the header as cryptsetup luksDump shows it (LUKS2, or LUKS1 via
 * luks1-dump.ts), the JSON area as stored (LUKS2 only), or the volume key after unlocking a
 * keyslot. Reading the header never writes, so a damaged copy is reported in one warning
 * instead of being repaired.
 * Spec: docs/formats.md (LUKS2 dump text, LUKS1 dump text).
 */
import type { BlockDevice } from '../block/block-device.js';
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';
import { formatLuks1Dump, formatLuks1VolumeKeyDump } from './luks1-dump.js';
import { isLuks1Device, loadLuks1Header, unlockLuks1 } from './luks1-volume.js';
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
  if (await isLuks1Device(dev)) throw new NbdcryptError('EUSAGE', 'this is a LUKS1 volume: it has no JSON metadata (plain dump shows its header)');
  return (await loadWarning(dev)).read!.chosen.json;
}

/** LUKS1: the dump, or with a passphrase the `--dump-volume-key` form. */
async function dumpLuks1(dev: BlockDevice, deviceName: string, opts: UnlockOptions & { passphrase?: Buffer }): Promise<string> {
  const h = await loadLuks1Header(dev);
  if (opts.passphrase === undefined) return formatLuks1Dump(deviceName, h);
  const { key } = await unlockLuks1(dev, h, opts.passphrase, opts);
  try {
    return formatLuks1VolumeKeyDump(deviceName, h, key);
  } finally {
    key.fill(0);
  }
}

/**
 * `cryptsetup luksDump` text for the device; with a passphrase, the `--dump-volume-key` form.
 * `deviceName` is the name cryptsetup would print (LUKS1 dumps and the volume key form).
 */
export async function dumpHeader(dev: BlockDevice, opts: UnlockOptions & { passphrase?: Buffer; deviceName?: string } = {}): Promise<string> {
  if (await isLuks1Device(dev)) return dumpLuks1(dev, opts.deviceName ?? 'device', opts);
  const l = await loadWarning(dev);
  if (opts.passphrase === undefined) return formatDump(l.fields, l.meta);
  const { key } = await unlockVolumeKey(dev, l, opts.passphrase, opts);
  try {
    return formatVolumeKeyDump(opts.deviceName ?? 'device', l.fields, dataSegment(l.meta), key);
  } finally {
    key.fill(0);
  }
}
