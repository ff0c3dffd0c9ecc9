/**
 * A LUKS1 volume as the operations use it: read and validate the one header copy, unlock the
 * volume key by trying the active keyslots in order (as cryptsetup's LUKS_open_key_with_hdr),
 * describe where the data is (payload offset, 512-byte sectors, IV = sector number from the
 * payload offset), and write a changed header back. The KDF costs (keyslot PBKDF2 and the key
 * digest) are bounded by kdf-cost-limits.ts before anything runs, as for LUKS2.
 * Spec: docs/formats.md (LUKS1 header, LUKS1 keyslots, LUKS1 data).
 */
import type { BlockDevice } from '../block/block-device.js';
import { checkKeySize } from '../crypt/cipher-spec.js';
import { NbdcryptError } from '../errors.js';
import { keepIfVerified, keyslotsTried } from './candidate-key.js';
import { checkKdfCost } from './kdf-cost-limits.js';
import { headerSectors, isLuks1, luks1CipherSpec, parseLuks1Header, serializeLuks1Header, LUKS1_PHDR_SIZE, type Luks1Header } from './luks1-header.js';
import { luks1DigestKdf, luks1SlotKdf, openLuks1Keyslot, verifyLuks1Key } from './luks1-keyslot.js';
import type { UnlockOptions } from './luks2-unlock.js';
import type { OpenedVolume } from './luks2-volume-state.js';

/** True when the device starts with a LUKS1 header (magic and version 1; not yet validated). */
export async function isLuks1Device(dev: BlockDevice): Promise<boolean> {
  if (dev.size < 8) return false;
  return isLuks1(await dev.read(0, 8));
}

/** Reads and validates the header; the device must hold the header and all keyslot areas. */
export async function loadLuks1Header(dev: BlockDevice): Promise<Luks1Header> {
  if (dev.size < LUKS1_PHDR_SIZE) throw new NbdcryptError('EBADHDR', `LUKS1 header: the ${dev.size}-byte device is too small to hold it`);
  const h = parseLuks1Header(await dev.read(0, LUKS1_PHDR_SIZE));
  const need = headerSectors(h) * 512;
  if (need > dev.size) throw new NbdcryptError('EBADHDR', `LUKS1 header: its keyslot areas need ${need} bytes but the device has ${dev.size}; the header belongs to another device or is damaged; no data was changed`);
  return h;
}

/** Writes the header (592 bytes at 0) and flushes. */
export async function writeLuks1Header(dev: BlockDevice, h: Luks1Header): Promise<void> {
  await dev.write(0, serializeLuks1Header(h));
  await dev.flush();
}

/**
 * Returns the volume key and the keyslot that opened it: ENOKEY when no active keyslot opens
 * with `passphrase`, EBADHDR for an unsupported cipher or an unreasonable KDF cost.
 */
export async function unlockLuks1(dev: BlockDevice, h: Luks1Header, passphrase: Buffer, opts: UnlockOptions = {}): Promise<{ key: Buffer; slot: number }> {
  const spec = luks1CipherSpec(h);
  checkKeySize(spec, h.keyBytes);
  const allow = opts.allowCostlyKdf ?? false;
  checkKdfCost(luks1DigestKdf(h), 'the LUKS1 volume key digest', allow);
  let slots = h.keyslots.filter((k) => k.active);
  if (opts.keySlot !== undefined) {
    const ks = h.keyslots[opts.keySlot];
    if (!ks?.active) throw new NbdcryptError('ENOKEY', `keyslot ${opts.keySlot} is not in use; no data was changed`);
    slots = [ks];
  }
  if (slots.length === 0) throw new NbdcryptError('ENOKEY', 'no active keyslot in this LUKS1 header; restore a header backup; no data was changed');
  let costly: NbdcryptError | undefined;
  for (const ks of slots) {
    try {
      checkKdfCost(luks1SlotKdf(h, ks), `keyslot ${ks.id}`, allow);
    } catch (e) {
      costly ??= e as NbdcryptError;
      continue;
    }
    const key = await openLuks1Keyslot(dev, h, ks, passphrase, opts.signal);
    if (await keepIfVerified(key, (k) => verifyLuks1Key(h, k, opts.signal))) return { key, slot: ks.id };
  }
  if (costly) throw costly;
  const tried = keyslotsTried(slots.map((k) => k.id));
  throw new NbdcryptError('ENOKEY', `wrong passphrase for ${tried}; no data was changed (if the passphrase is right, the key material of ${tried} may be damaged: restore a header backup)`);
}

/** Where the data is: from the payload offset to the end of the device, 512-byte sectors. */
export function describeLuks1(h: Luks1Header, dev: BlockDevice, key: Buffer, slot: number): OpenedVolume {
  const dataOffset = h.payloadOffset * 512;
  if (dataOffset === 0) {
    // The data lives on another device; serving this one would expose (and overwrite) the header.
    throw new NbdcryptError('ENOTSUP', 'this is a detached LUKS1 header (payload offset 0): its data is on another device, and nbdcrypt serves volumes whose header and data share one device; no data was changed');
  }
  if (dataOffset + 512 > dev.size) {
    throw new NbdcryptError('EBADHDR', `LUKS1 payload starts at byte ${dataOffset} (payload-offset ${h.payloadOffset}), but the device has only ${dev.size} bytes; the header belongs to another, larger device or is damaged; no data was changed`);
  }
  const avail = dev.size - dataOffset;
  return { format: 'LUKS1', cipher: luks1CipherSpec(h).name, volumeKey: key, dataOffset, sectorSize: 512, ivTweak: 0, keyslot: slot, uuid: h.uuid, label: '', dataSize: avail - (avail % 512) };
}

/** Opens a LUKS1 volume (open-volume.ts dispatches here). Writes nothing. */
export async function openLuks1Volume(dev: BlockDevice, passphrase: Buffer, opts: UnlockOptions = {}): Promise<OpenedVolume> {
  const h = await loadLuks1Header(dev);
  const { key, slot } = await unlockLuks1(dev, h, passphrase, opts);
  try {
    return describeLuks1(h, dev, key, slot);
  } catch (e) {
    key.fill(0);
    throw e;
  }
}
