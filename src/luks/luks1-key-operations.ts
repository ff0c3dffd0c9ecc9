/**
 * Keyslot changes on a LUKS1 volume, as cryptsetup's luksAddKey, luksRemoveKey/luksKillSlot
 * and luksChangeKey do them on LUKS1: 8 keyslots with fixed key material areas, PBKDF2 with
 * the header's hash (iterations benchmarked to --iter-time, or forced), 4000 AF stripes.
 * New key material is written and flushed before the header that activates it; a removed
 * keyslot is first disabled in the header (salt and iterations zeroed), then its area is
 * overwritten with random bytes. A change goes to a free keyslot when there is one, then the
 * old keyslot is removed (so a crash leaves the old or the new passphrase working), as
 * cryptsetup does; with an explicit --key-slot, or no free keyslot, it is rewritten in place.
 * Spec: docs/formats.md (LUKS1 keyslots).
 */
import { checkWritable, type BlockDevice } from '../block/block-device.js';
import { NbdcryptError } from '../errors.js';
import { benchmarkPbkdf2, DEFAULT_ITER_TIME_MS, PBKDF2_MIN_ITERATIONS, type KdfOptions } from './kdf-benchmark.js';
import { LUKS1_KEYSLOTS, LUKS1_SALT_SIZE, type Luks1Header, type Luks1Keyslot } from './luks1-header.js';
import { storeLuks1Keyslot, wipeLuks1Keyslot } from './luks1-keyslot.js';
import { loadLuks1Header, unlockLuks1, writeLuks1Header } from './luks1-volume.js';
import type { UnlockOptions } from './luks2-unlock.js';

type Auth = Omit<UnlockOptions, 'keySlot'>;

/** PBKDF2 iterations for a new LUKS1 keyslot: forced, or benchmarked to --iter-time with the header's hash. */
export async function luks1Iterations(hash: string, keyBytes: number, o: KdfOptions): Promise<number> {
  if (o.pbkdf === 'argon2id') throw new NbdcryptError('EUSAGE', 'LUKS1 keyslots use pbkdf2 only; drop --pbkdf argon2id (or convert the volume to LUKS2 first)');
  if (o.pbkdfMemoryKiB !== undefined || o.pbkdfParallel !== undefined) throw new NbdcryptError('EUSAGE', '--pbkdf-memory and --pbkdf-parallel are argon2 options; LUKS1 keyslots use pbkdf2');
  if (o.pbkdfForceIterations !== undefined) {
    if (!Number.isInteger(o.pbkdfForceIterations) || o.pbkdfForceIterations < PBKDF2_MIN_ITERATIONS) throw new NbdcryptError('EUSAGE', `--pbkdf-force-iterations must be at least ${PBKDF2_MIN_ITERATIONS} for pbkdf2`);
    return o.pbkdfForceIterations;
  }
  return benchmarkPbkdf2(hash, o.iterTimeMs ?? DEFAULT_ITER_TIME_MS, keyBytes);
}

function checkSlotNumber(n: number): void {
  if (!Number.isInteger(n) || n < 0 || n >= LUKS1_KEYSLOTS) throw new NbdcryptError('EUSAGE', `keyslot ${n} is out of range 0 … ${LUKS1_KEYSLOTS - 1} (LUKS1 has ${LUKS1_KEYSLOTS})`);
}

function disable(ks: Luks1Keyslot): void {
  ks.active = false;
  ks.iterations = 0;
  ks.salt = Buffer.alloc(LUKS1_SALT_SIZE);
}

function freeSlot(h: Luks1Header): Luks1Keyslot | undefined {
  return h.keyslots.find((k) => !k.active);
}

/** Adds a keyslot for `newPassphrase`, authorised by `passphrase`; returns its number. */
export async function addLuks1Key(dev: BlockDevice, passphrase: Buffer, newPassphrase: Buffer, opts: KdfOptions & { keySlot?: number }, auth: Auth): Promise<number> {
  checkWritable(dev, 'add key');
  const h = await loadLuks1Header(dev);
  let ks: Luks1Keyslot | undefined;
  if (opts.keySlot !== undefined) {
    checkSlotNumber(opts.keySlot);
    ks = h.keyslots[opts.keySlot]!;
    if (ks.active) throw new NbdcryptError('EEXIST', `keyslot ${opts.keySlot} is already in use; pick a free one or omit --key-slot`);
  } else {
    ks = freeSlot(h);
    if (!ks) throw new NbdcryptError('ENOTSUP', `all ${LUKS1_KEYSLOTS} LUKS1 keyslots are in use; remove one first`);
  }
  const { key } = await unlockLuks1(dev, h, passphrase, auth);
  try {
    const iterations = await luks1Iterations(h.hashSpec, h.keyBytes, opts);
    await storeLuks1Keyslot(dev, h, ks, key, newPassphrase, iterations);
    await writeLuks1Header(dev, h);
    return ks.id;
  } finally {
    key.fill(0);
  }
}

/** Disables keyslot `slot` in the header, then wipes its key material. */
async function dropSlot(dev: BlockDevice, h: Luks1Header, slot: number): Promise<void> {
  const ks = h.keyslots[slot]!;
  disable(ks);
  await writeLuks1Header(dev, h);
  await wipeLuks1Keyslot(dev, h, ks);
}

/**
 * Removes a keyslot: the one `passphrase` opens, or `keySlot` (authorised by any keyslot).
 * Removing the last active keyslot needs `force`. Returns the removed slot.
 */
export async function removeLuks1Key(dev: BlockDevice, passphrase: Buffer, opts: { keySlot?: number; force?: boolean }, auth: Auth): Promise<number> {
  checkWritable(dev, 'remove key');
  const h = await loadLuks1Header(dev);
  if (opts.keySlot !== undefined) {
    checkSlotNumber(opts.keySlot);
    if (!h.keyslots[opts.keySlot]!.active) throw new NbdcryptError('EUSAGE', `keyslot ${opts.keySlot} is not in use`);
  }
  const { key, slot: opened } = await unlockLuks1(dev, h, passphrase, auth);
  key.fill(0);
  const slot = opts.keySlot ?? opened;
  if (h.keyslots.filter((k) => k.active).length === 1 && !opts.force) {
    throw new NbdcryptError('EUSAGE', `keyslot ${slot} is the last one; removing it makes the data unreadable forever — use --force if that is what you want`);
  }
  await dropSlot(dev, h, slot);
  return slot;
}

/** Replaces the passphrase of the keyslot `passphrase` opens (or `keySlot`); returns the slot now holding it. */
export async function changeLuks1Key(dev: BlockDevice, passphrase: Buffer, newPassphrase: Buffer, opts: KdfOptions & { keySlot?: number }, auth: Auth): Promise<number> {
  checkWritable(dev, 'change key');
  const h = await loadLuks1Header(dev);
  if (opts.keySlot !== undefined) checkSlotNumber(opts.keySlot);
  const { key, slot } = await unlockLuks1(dev, h, passphrase, { ...auth, keySlot: opts.keySlot });
  try {
    const iterations = await luks1Iterations(h.hashSpec, h.keyBytes, opts);
    const target = opts.keySlot === undefined ? (freeSlot(h) ?? h.keyslots[slot]!) : h.keyslots[slot]!;
    if (target.id === slot) disable(target); // rewritten in place
    await storeLuks1Keyslot(dev, h, target, key, newPassphrase, iterations);
    await writeLuks1Header(dev, h);
    if (target.id !== slot) await dropSlot(dev, h, slot);
    return target.id;
  } finally {
    key.fill(0);
  }
}
