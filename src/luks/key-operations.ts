/**
 * Keyslot changes on a LUKS2 volume, as cryptsetup luksAddKey, luksRemoveKey/luksKillSlot and
 * luksChangeKey do them: each is authorised by a passphrase that opens some keyslot, writes
 * the new keyslot material (and flushes it) before the header that points to it, and commits
 * the header as seqid++ and both copies; a freed keyslot area is overwritten with random
 * bytes after the header no longer points to it. A new keyslot's area is encrypted with the
 * data segment's cipher and a key of the volume key's size, cryptsetup's default.
 * A LUKS1 volume goes to luks1-key-operations.ts.
 * Spec: docs/formats.md (LUKS2 keyslots).
 */
import { randomBytes } from 'node:crypto';
import { checkWritable, type BlockDevice } from '../block/block-device.js';
import { NbdcryptError } from '../errors.js';
import { chooseKdf, kdfChoiceOf, type KdfOptions } from './kdf-benchmark.js';
import type { Json, JsonObject } from './luks2-json-fields.js';
import { addLuks1Key, changeLuks1Key, removeLuks1Key } from './luks1-key-operations.js';
import { isLuks1Device } from './luks1-volume.js';
import { storeKeyslot, keyslotAreaSize, type KeyslotEngines } from './luks2-keyslot.js';
import { findAreaGap } from './luks2-layout.js';
import { MAX_KEYSLOTS } from './luks2-metadata.js';
import { keyslotJson } from './luks2-metadata-json.js';
import { digestFor, unlockVolumeKey, type UnlockOptions } from './luks2-unlock.js';
import { commitHeader, dataSegment, loadHeader } from './luks2-volume-state.js';

/** KDF options for a new keyslot (add/change), as on format. */
export interface NewKeyOptions extends KdfOptions {
  keySlot?: number;
}

/** How the passphrase that authorises a change is checked (no key slot here: each operation has its own). */
export type AuthOptions = Omit<UnlockOptions, 'keySlot'>;

function rawObj(v: Json | undefined): JsonObject {
  return v as JsonObject;
}

function checkSlotNumber(n: number): void {
  if (!Number.isInteger(n) || n < 0 || n >= MAX_KEYSLOTS) throw new NbdcryptError('EUSAGE', `keyslot ${n} is out of range 0 … ${MAX_KEYSLOTS - 1}`);
}

/** Adds a keyslot for `newPassphrase`, authorised by `passphrase`; returns its number. */
export async function addKey(dev: BlockDevice, passphrase: Buffer, newPassphrase: Buffer, opts: NewKeyOptions = {}, auth: AuthOptions = {}): Promise<number> {
  checkWritable(dev, 'add key');
  if (await isLuks1Device(dev)) return addLuks1Key(dev, passphrase, newPassphrase, opts, auth);
  const l = await loadHeader(dev);
  const { key, slot: authSlot } = await unlockVolumeKey(dev, l, passphrase, { engines: opts.engines, ...auth });
  try {
    let slot = opts.keySlot;
    if (slot !== undefined) {
      checkSlotNumber(slot);
      if (l.meta.keyslots.some((k) => k.id === slot)) throw new NbdcryptError('EEXIST', `keyslot ${slot} is already in use; pick a free one or omit --key-slot`);
    } else {
      slot = [...Array(MAX_KEYSLOTS).keys()].find((i) => !l.meta.keyslots.some((k) => k.id === i));
      if (slot === undefined) throw new NbdcryptError('ENOTSUP', `all ${MAX_KEYSLOTS} keyslots are in use; remove one first`);
    }
    const areaSize = keyslotAreaSize(key.length);
    const areaOffset = findAreaGap(l.meta, l.fields.hdrSize, areaSize);
    const kdf = await chooseKdf(kdfChoiceOf(opts));
    const encryption = dataSegment(l.meta).encryption;
    await storeKeyslot(dev, { areaOffset, areaSize, kdf, encryption }, key, newPassphrase, opts.engines);
    rawObj(l.meta.raw.keyslots)[String(slot)] = keyslotJson({ keySize: key.length, areaOffset, areaSize, kdf, encryption });
    const d = digestFor(l.meta, authSlot)!;
    (rawObj(rawObj(l.meta.raw.digests)[String(d.id)]).keyslots as Json[]).push(String(slot));
    await commitHeader(dev, l);
    return slot;
  } finally {
    key.fill(0);
  }
}

/** Removes from `json` every reference to keyslot `slot` (digests and tokens). */
function dropSlot(raw: JsonObject, slot: number): void {
  delete rawObj(raw.keyslots)[String(slot)];
  for (const group of ['digests', 'tokens'] as const) {
    for (const o of Object.values(rawObj(raw[group]))) {
      const arr = rawObj(o).keyslots as Json[];
      const i = arr.indexOf(String(slot));
      if (i >= 0) arr.splice(i, 1);
    }
  }
}

/**
 * Removes a keyslot. `passphrase` must open some keyslot; without `keySlot` the slot it opens
 * is removed (luksRemoveKey), with it that slot is (luksKillSlot). Removing the last keyslot
 * needs `force` (the data becomes unreadable). Returns the removed slot.
 */
export async function removeKey(dev: BlockDevice, passphrase: Buffer, opts: { keySlot?: number; force?: boolean; engines?: KeyslotEngines } = {}, auth: AuthOptions = {}): Promise<number> {
  checkWritable(dev, 'remove key');
  if (await isLuks1Device(dev)) return removeLuks1Key(dev, passphrase, opts, auth);
  const l = await loadHeader(dev);
  if (opts.keySlot !== undefined) {
    checkSlotNumber(opts.keySlot);
    if (!l.meta.keyslots.some((k) => k.id === opts.keySlot)) throw new NbdcryptError('EUSAGE', `keyslot ${opts.keySlot} is not in use`);
  }
  const { key, slot: opened } = await unlockVolumeKey(dev, l, passphrase, { engines: opts.engines, ...auth });
  key.fill(0);
  const slot = opts.keySlot ?? opened;
  if (l.meta.keyslots.length === 1 && !opts.force) {
    throw new NbdcryptError('EUSAGE', `keyslot ${slot} is the last one; removing it makes the data unreadable forever — use --force if that is what you want`);
  }
  const ks = l.meta.keyslots.find((k) => k.id === slot)!;
  dropSlot(l.meta.raw, slot);
  await commitHeader(dev, l);
  await dev.write(ks.areaOffset, randomBytes(ks.areaSize));
  await dev.flush();
  return slot;
}

/** Replaces the passphrase of the keyslot `passphrase` opens (or `keySlot`), keeping its number (LUKS1: the number it returns, see luks1-key-operations.ts). */
export async function changeKey(dev: BlockDevice, passphrase: Buffer, newPassphrase: Buffer, opts: NewKeyOptions = {}, auth: AuthOptions = {}): Promise<number> {
  checkWritable(dev, 'change key');
  if (await isLuks1Device(dev)) return changeLuks1Key(dev, passphrase, newPassphrase, opts, auth);
  const l = await loadHeader(dev);
  if (opts.keySlot !== undefined) checkSlotNumber(opts.keySlot);
  const { key, slot } = await unlockVolumeKey(dev, l, passphrase, { engines: opts.engines, ...auth, keySlot: opts.keySlot });
  try {
    const old = l.meta.keyslots.find((k) => k.id === slot)!;
    const areaSize = keyslotAreaSize(key.length);
    let areaOffset: number;
    try {
      areaOffset = findAreaGap(l.meta, l.fields.hdrSize, areaSize);
    } catch {
      areaOffset = findAreaGap(l.meta, l.fields.hdrSize, areaSize, slot); // no spare room: overwrite in place
    }
    const kdf = await chooseKdf(kdfChoiceOf(opts));
    const encryption = dataSegment(l.meta).encryption;
    await storeKeyslot(dev, { areaOffset, areaSize, kdf, encryption }, key, newPassphrase, opts.engines);
    rawObj(l.meta.raw.keyslots)[String(slot)] = keyslotJson({ keySize: key.length, areaOffset, areaSize, kdf, encryption, priority: old.priority });
    await commitHeader(dev, l);
    if (areaOffset !== old.areaOffset) {
      await dev.write(old.areaOffset, randomBytes(old.areaSize));
      await dev.flush();
    }
    return slot;
  } finally {
    key.fill(0);
  }
}
