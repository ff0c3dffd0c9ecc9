/**
 * LUKS2 "luks2" keyslots: derive the area key from the passphrase (argon2id/argon2i or
 * PBKDF2, kdf.ts), decrypt the keyslot area with aes-xts-plain64 in 512-byte units numbered
 * from 0 (whatever the data sector size), AF-merge the stripes into a candidate volume key;
 * and the reverse for storing.
 * Spec: docs/formats.md (LUKS2 keyslots).
 */
import { getHashes, randomBytes } from 'node:crypto';
import type { BlockDevice } from '../block/block-device.js';
import { NbdcryptError } from '../errors.js';
import { createXtsCipher, type XtsEngineName } from '../crypt/xts-cipher.js';
import { afMerge, afSplit, AF_STRIPES } from './af.js';
import { deriveKey, deriveKeyAbortable, type KeyslotEngines } from './kdf.js';
export type { KeyslotEngines } from './kdf.js';
import type { Kdf, Keyslot } from './luks2-metadata.js';

const SECTOR = 512;

/** Bytes of AF material for a key: whole 512-byte sectors (AF_split_sectors · 512). */
export function afAreaBytes(keySize: number): number {
  return Math.ceil((keySize * AF_STRIPES) / SECTOR) * SECTOR;
}

/** Keyslot area length cryptsetup allocates: AF material rounded up to 4096. */
export function keyslotAreaSize(keySize: number): number {
  return Math.ceil((keySize * AF_STRIPES) / 4096) * 4096;
}

function checkSupported(ks: Keyslot): void {
  if (ks.type !== 'luks2') throw new NbdcryptError('ENOTSUP', `keyslot ${ks.id}: type '${ks.type}' is not supported (only 'luks2')`);
  if (ks.areaEncryption !== 'aes-xts-plain64' || ks.areaKeySize !== 64) {
    throw new NbdcryptError('ENOTSUP', `keyslot ${ks.id}: area encryption ${ks.areaEncryption} with a ${ks.areaKeySize * 8}-bit key is not supported (only aes-xts-plain64, 512 bits)`);
  }
  const hashes = getHashes();
  if (!hashes.includes(ks.afHash)) throw new NbdcryptError('ENOTSUP', `keyslot ${ks.id}: AF hash '${ks.afHash}' is not available here`);
  if (ks.kdf.type === 'pbkdf2' && !hashes.includes(ks.kdf.hash)) throw new NbdcryptError('ENOTSUP', `keyslot ${ks.id}: PBKDF2 hash '${ks.kdf.hash}' is not available here`);
  if (afAreaBytes(ks.keySize) > ks.areaSize) throw new NbdcryptError('EBADHDR', `keyslot ${ks.id}: area of ${ks.areaSize} bytes is too small for a ${ks.keySize}-byte key`);
}

/**
 * Unlocks one keyslot and returns the candidate volume key (not yet checked against the
 * digest). `signal` stops the key derivation (EINTR). Caller wipes the key.
 */
export async function openKeyslot(dev: BlockDevice, ks: Keyslot, passphrase: Buffer, signal?: AbortSignal, engines: KeyslotEngines = {}): Promise<Buffer> {
  checkSupported(ks);
  if (ks.areaOffset + afAreaBytes(ks.keySize) > dev.size) throw new NbdcryptError('EBADHDR', `keyslot ${ks.id}: its area reaches past the end of the ${dev.size}-byte device; the header does not belong to this device`);
  const material = await dev.read(ks.areaOffset, afAreaBytes(ks.keySize));
  let areaKey: Buffer;
  try {
    areaKey = await deriveKeyAbortable(ks.kdf, passphrase, ks.areaKeySize, signal, engines);
  } catch (e) {
    material.fill(0);
    if (e instanceof NbdcryptError) throw e;
    const cost = ks.kdf.type === 'pbkdf2' ? `pbkdf2-${ks.kdf.hash}` : `${ks.kdf.type} with ${ks.kdf.memory} KiB`;
    throw new NbdcryptError('ENOTSUP', `keyslot ${ks.id}: ${cost} failed here (${e instanceof Error ? e.message : String(e)}); not enough memory, or an unsupported hash?`);
  }
  const cipher = createXtsCipher(areaKey, engines.xts);
  areaKey.fill(0);
  try {
    cipher.decrypt(material, 0, SECTOR);
    return afMerge(material, ks.keySize, ks.afHash);
  } finally {
    cipher.destroy();
    material.fill(0);
  }
}

/**
 * AF-splits `volumeKey`, encrypts it with the key derived from `passphrase` and writes it to
 * [areaOffset, areaOffset + areaSize); the tail of the area past the AF material gets random
 * bytes. Flushes before returning so the header that points here is written after it.
 */
export async function storeKeyslot(dev: BlockDevice, p: { areaOffset: number; areaSize: number; kdf: Kdf }, volumeKey: Buffer, passphrase: Buffer, engines: KeyslotEngines = {}): Promise<void> {
  const n = afAreaBytes(volumeKey.length);
  if (n > p.areaSize) throw new NbdcryptError('EBADHDR', `keyslot area of ${p.areaSize} bytes is too small for a ${volumeKey.length}-byte key`);
  const split = afSplit(volumeKey, 'sha256');
  const material = Buffer.alloc(n);
  split.copy(material);
  split.fill(0);
  const areaKey = await deriveKey(p.kdf, passphrase, 64, engines);
  const cipher = createXtsCipher(areaKey, engines.xts);
  areaKey.fill(0);
  try {
    cipher.encrypt(material, 0, SECTOR);
  } finally {
    cipher.destroy();
  }
  const area = Buffer.concat([material, randomBytes(p.areaSize - n)]);
  await dev.write(p.areaOffset, area);
  await dev.flush();
}
