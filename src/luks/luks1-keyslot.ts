/**
 * LUKS1 keyslots and the volume key digest. A keyslot holds the volume key AF-split into 4000
 * stripes (diffused with the header's hash), encrypted with the volume's own cipher and mode
 * under PBKDF2(hash, passphrase, slot salt, slot iterations, key-bytes) in 512-byte sectors
 * whose IVs count from 0 at the key material offset. A candidate key is the volume key when
 * PBKDF2(hash, key, mk-digest-salt, mk-digest-iter, 20) equals mk-digest.
 * Spec: docs/formats.md (LUKS1 keyslots).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { BlockDevice } from '../block/block-device.js';
import { createSectorCipher } from '../crypt/sector-cipher.js';
import { NbdcryptError } from '../errors.js';
import { afMerge, afSplit } from './af.js';
import { pbkdf2 } from './hash-functions.js';
import { deriveKeyAbortable } from './kdf.js';
import { afSectors, luks1CipherSpec, LUKS1_DIGEST_SIZE, LUKS1_SALT_SIZE, type Luks1Header, type Luks1Keyslot } from './luks1-header.js';
import type { Kdf } from './luks2-metadata.js';

/** The keyslot's PBKDF2 as a Kdf (for the cost bounds and the abortable derivation). */
export function luks1SlotKdf(h: Luks1Header, ks: Luks1Keyslot): Kdf {
  return { type: 'pbkdf2', hash: h.hashSpec, iterations: ks.iterations, salt: ks.salt };
}

/** The volume key digest's PBKDF2 as a Kdf. */
export function luks1DigestKdf(h: Luks1Header): Kdf {
  return { type: 'pbkdf2', hash: h.hashSpec, iterations: h.mkDigestIterations, salt: h.mkDigestSalt };
}

function materialRange(h: Luks1Header, ks: Luks1Keyslot, dev: BlockDevice): { offset: number; length: number } {
  const offset = ks.keyMaterialOffset * 512;
  const length = afSectors(h.keyBytes, ks.stripes) * 512;
  if (offset + length > dev.size) throw new NbdcryptError('EBADHDR', `LUKS1 keyslot ${ks.id}: its key material reaches past the end of the ${dev.size}-byte device; the header does not belong to this device`);
  return { offset, length };
}

/**
 * Unlocks one keyslot and returns the candidate volume key (not yet checked against the
 * digest). `signal` stops the key derivation (EINTR). Caller wipes the key.
 */
export async function openLuks1Keyslot(dev: BlockDevice, h: Luks1Header, ks: Luks1Keyslot, passphrase: Buffer, signal?: AbortSignal): Promise<Buffer> {
  const spec = luks1CipherSpec(h);
  const { offset, length } = materialRange(h, ks, dev);
  const material = await dev.read(offset, length);
  const slotKey = await deriveKeyAbortable(luks1SlotKdf(h, ks), passphrase, h.keyBytes, signal).catch((e: unknown) => {
    material.fill(0);
    if (e instanceof NbdcryptError) throw e;
    // Node's PBKDF2 stops at 2^31 − 1 iterations; LUKS1 allows up to 2^32 − 1.
    throw new NbdcryptError('ENOTSUP', `LUKS1 keyslot ${ks.id}: pbkdf2-${h.hashSpec} with ${ks.iterations} iterations failed here (${e instanceof Error ? e.message : String(e)})`);
  });
  try {
    const cipher = createSectorCipher(spec, slotKey);
    try {
      await cipher.decryptAsync(material, 0, 512);
    } finally {
      cipher.destroy();
    }
    return afMerge(material, h.keyBytes, h.hashSpec, ks.stripes);
  } finally {
    slotKey.fill(0);
    material.fill(0);
  }
}

/** True when `key` matches the header's volume key digest (constant-time compare; `signal` stops it). */
export async function verifyLuks1Key(h: Luks1Header, key: Buffer, signal?: AbortSignal): Promise<boolean> {
  const d = await deriveKeyAbortable(luks1DigestKdf(h), key, LUKS1_DIGEST_SIZE, signal);
  const ok = timingSafeEqual(d, h.mkDigest);
  d.fill(0);
  return ok;
}

/** A fresh volume key digest (salt, iterations, digest) for `key`. */
export async function createLuks1Digest(hash: string, key: Buffer, iterations: number): Promise<{ mkDigest: Buffer; mkDigestSalt: Buffer; mkDigestIterations: number }> {
  const mkDigestSalt = randomBytes(LUKS1_SALT_SIZE);
  const mkDigest = await pbkdf2(hash, key, mkDigestSalt, iterations, LUKS1_DIGEST_SIZE);
  return { mkDigest, mkDigestSalt, mkDigestIterations: iterations };
}

/**
 * Stores `volumeKey` for `passphrase` in keyslot `ks` (its area, fresh salt, `iterations`) and
 * marks it active in `h`; the caller writes the header afterwards. The key material is flushed
 * before this returns, so a header that points to it is never written first.
 */
export async function storeLuks1Keyslot(dev: BlockDevice, h: Luks1Header, ks: Luks1Keyslot, volumeKey: Buffer, passphrase: Buffer, iterations: number): Promise<void> {
  const spec = luks1CipherSpec(h);
  const { offset, length } = materialRange(h, ks, dev);
  const salt = randomBytes(LUKS1_SALT_SIZE);
  const split = afSplit(volumeKey, h.hashSpec, ks.stripes);
  const material = Buffer.alloc(length);
  split.copy(material);
  split.fill(0);
  const slotKey = await pbkdf2(h.hashSpec, passphrase, salt, iterations, h.keyBytes);
  const cipher = createSectorCipher(spec, slotKey);
  slotKey.fill(0);
  try {
    await cipher.encryptAsync(material, 0, 512);
  } finally {
    cipher.destroy();
  }
  await dev.write(offset, material);
  await dev.flush();
  ks.salt = salt;
  ks.iterations = iterations;
  ks.active = true;
}

/** Overwrites a keyslot's key material with random bytes (luksKillSlot's wipe). */
export async function wipeLuks1Keyslot(dev: BlockDevice, h: Luks1Header, ks: Luks1Keyslot): Promise<void> {
  const { offset, length } = materialRange(h, ks, dev);
  await dev.write(offset, randomBytes(length));
  await dev.flush();
}
