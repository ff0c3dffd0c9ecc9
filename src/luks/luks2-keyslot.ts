/**
 * LUKS2 "luks2" keyslots: derive the area key from the passphrase (argon2id/argon2i or
 * PBKDF2, kdf.ts), decrypt the keyslot area with its own cipher spec and key size (the area's
 * `encryption` and `key_size`: cryptsetup uses the data segment's cipher and the volume key
 * size, e.g. serpent-xts-plain64 with 256 bits; any spec cipher-spec.ts supports) in 512-byte
 * units numbered from 0 (whatever the data sector size), AF-merge the stripes into a
 * candidate volume key; and the reverse for storing.
 * Spec: docs/formats.md (LUKS2 keyslots, LUKS2 ciphers).
 */
import { getHashes, randomBytes } from 'node:crypto';
import type { BlockDevice } from '../block/block-device.js';
import { NbdcryptError } from '../errors.js';
import { checkKeySize, DEFAULT_CIPHER, parseCipherSpec, type CipherSpec } from '../crypt/cipher-spec.js';
import { createSectorCipher } from '../crypt/sector-cipher.js';
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

/** A keyslot area's cipher spec, or EBADHDR naming `what` (e.g. "keyslot 3"), the spec and why. */
function areaCipherSpec(encryption: string, keyBytes: number, what: string): CipherSpec {
  try {
    const spec = parseCipherSpec(encryption);
    checkKeySize(spec, keyBytes);
    return spec;
  } catch (e) {
    if (!(e instanceof NbdcryptError)) throw e;
    throw new NbdcryptError('EBADHDR', `${what}: area encryption ${encryption} with a ${keyBytes * 8}-bit key is not supported (${e.message})`);
  }
}

/** Why nbdcrypt cannot decrypt this keyslot's area (EBADHDR naming the spec), or undefined. */
export function keyslotCipherError(ks: Keyslot): NbdcryptError | undefined {
  try {
    areaCipherSpec(ks.areaEncryption, ks.areaKeySize, `keyslot ${ks.id}`);
    return undefined;
  } catch (e) {
    if (e instanceof NbdcryptError) return e;
    throw e;
  }
}

/**
 * Encrypts or decrypts `material` in place in 512-byte units numbered from 0 under `spec`
 * and `areaKey`; wipes `areaKey`, and `material` too if this throws.
 */
async function cryptArea(spec: CipherSpec, areaKey: Buffer, material: Buffer, op: 'encrypt' | 'decrypt', engines: KeyslotEngines): Promise<void> {
  try {
    const cipher = createSectorCipher(spec, areaKey, engines.xts);
    areaKey.fill(0);
    try {
      await (op === 'encrypt' ? cipher.encryptAsync(material, 0, SECTOR) : cipher.decryptAsync(material, 0, SECTOR));
    } finally {
      cipher.destroy();
    }
  } catch (e) {
    material.fill(0);
    throw e;
  } finally {
    areaKey.fill(0);
  }
}

function checkSupported(ks: Keyslot): CipherSpec {
  if (ks.type !== 'luks2') throw new NbdcryptError('ENOTSUP', `keyslot ${ks.id}: type '${ks.type}' is not supported (only 'luks2')`);
  const spec = areaCipherSpec(ks.areaEncryption, ks.areaKeySize, `keyslot ${ks.id}`);
  const hashes = getHashes();
  if (!hashes.includes(ks.afHash)) throw new NbdcryptError('ENOTSUP', `keyslot ${ks.id}: AF hash '${ks.afHash}' is not available here`);
  if (ks.kdf.type === 'pbkdf2' && !hashes.includes(ks.kdf.hash)) throw new NbdcryptError('ENOTSUP', `keyslot ${ks.id}: PBKDF2 hash '${ks.kdf.hash}' is not available here`);
  if (afAreaBytes(ks.keySize) > ks.areaSize) throw new NbdcryptError('EBADHDR', `keyslot ${ks.id}: area of ${ks.areaSize} bytes is too small for a ${ks.keySize}-byte key`);
  return spec;
}

/**
 * Unlocks one keyslot and returns the candidate volume key (not yet checked against the
 * digest). `signal` stops the key derivation (EINTR). Caller wipes the key.
 */
export async function openKeyslot(dev: BlockDevice, ks: Keyslot, passphrase: Buffer, signal?: AbortSignal, engines: KeyslotEngines = {}): Promise<Buffer> {
  const spec = checkSupported(ks);
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
  try {
    await cryptArea(spec, areaKey, material, 'decrypt', engines);
    return afMerge(material, ks.keySize, ks.afHash);
  } finally {
    material.fill(0);
  }
}

/**
 * AF-splits `volumeKey`, encrypts it under `encryption` (default aes-xts-plain64) with a key
 * of the volume key's size derived from `passphrase` and writes it to
 * [areaOffset, areaOffset + areaSize); the tail of the area past the AF material gets random
 * bytes. Flushes before returning so the header that points here is written after it.
 */
export async function storeKeyslot(dev: BlockDevice, p: { areaOffset: number; areaSize: number; kdf: Kdf; encryption?: string }, volumeKey: Buffer, passphrase: Buffer, engines: KeyslotEngines = {}): Promise<void> {
  const spec = areaCipherSpec(p.encryption ?? DEFAULT_CIPHER, volumeKey.length, 'new keyslot');
  const n = afAreaBytes(volumeKey.length);
  if (n > p.areaSize) throw new NbdcryptError('EBADHDR', `keyslot area of ${p.areaSize} bytes is too small for a ${volumeKey.length}-byte key`);
  const split = afSplit(volumeKey, 'sha256');
  const material = Buffer.alloc(n);
  split.copy(material);
  split.fill(0);
  const areaKey = await deriveKey(p.kdf, passphrase, volumeKey.length, engines);
  await cryptArea(spec, areaKey, material, 'encrypt', engines);
  const area = Buffer.concat([material, randomBytes(p.areaSize - n)]);
  await dev.write(p.areaOffset, area);
  await dev.flush();
}
