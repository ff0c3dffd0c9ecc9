/**
 * The public LUKS2 API that the CLI and the serve path code against: open (try keyslots,
 * verify the digest, repair a damaged or stale header copy), format, add/remove/change a
 * keyslot, back up/restore the header area, dump. Everything works on a BlockDevice, so the
 * same code handles a local file and the remote export. Every metadata change is seqid++ and
 * a crash-safe write of both copies; keyslot material is written (and flushed) before the
 * header that points to it. Spec: docs/formats.md (LUKS2).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { checkWritable, type BlockDevice } from '../block/block-device.js';
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';
import { readHeaders, writeHeaders, HDR_SIZES, MAGIC_PRIMARY, type HeaderFields, type HeaderReadResult } from './header.js';
import { parseMetadata, serializeMetadata, keyslotJson, segmentJson, digestJson, MAX_KEYSLOTS, type Metadata, type Segment, type Keyslot, type JsonObject, type Json } from './metadata.js';
import { openKeyslot, storeKeyslot, keyslotAreaSize } from './keyslot.js';
import { verifyDigest, createDigest, benchmarkDigestIterations, DIGEST_MIN_ITERATIONS } from './digest.js';
import { chooseKdf, type KdfChoice } from './kdf-benchmark.js';
import { DEFAULT_DATA_OFFSET, DEFAULT_HDR_SIZE, DEFAULT_KEYSLOTS_SIZE, findAreaGap } from './layout.js';
import { formatDump, formatVolumeKeyDump } from './dump.js';

export interface OpenedVolume {
  volumeKey: Buffer;
  dataOffset: number;
  sectorSize: number;
  ivTweak: number;
  keyslot: number;
  uuid: string;
  label: string;
  /** Bytes of the data segment (a "dynamic" segment runs to the end of the device, whole sectors). */
  dataSize: number;
}

export interface FormatOptions {
  sectorSize?: 512 | 4096;
  label?: string;
  uuid?: string;
  iterTimeMs?: number;
  pbkdfMemoryKiB?: number;
  pbkdfParallel?: number;
  pbkdfForceIterations?: number;
  pbkdf?: 'argon2id' | 'pbkdf2';
  force?: boolean;
  volumeKey?: Buffer;
  /** Data segment offset in bytes: 16 MiB (default), or 0 for a detached header (the data lives on another device). */
  dataOffset?: 0 | 16777216;
}

/** KDF options for a new keyslot (add/change), as on format. */
export interface NewKeyOptions {
  keySlot?: number;
  iterTimeMs?: number;
  pbkdfMemoryKiB?: number;
  pbkdfParallel?: number;
  pbkdfForceIterations?: number;
  pbkdf?: 'argon2id' | 'pbkdf2';
}

interface Loaded {
  /** How the header was read; absent for a header built in memory (format). */
  read?: HeaderReadResult;
  meta: Metadata;
  fields: HeaderFields;
}

const metaCache = new WeakMap<object, Metadata>();

async function load(dev: BlockDevice): Promise<Loaded> {
  const read = await readHeaders(dev, (c) => {
    metaCache.set(c, parseMetadata(c.json, c.hdrSize));
  });
  const c = read.chosen;
  const meta = metaCache.get(c)!;
  return { read, meta, fields: { hdrSize: c.hdrSize, seqid: c.seqid, label: c.label, checksumAlg: c.checksumAlg, uuid: c.uuid, subsystem: c.subsystem } };
}

/** Validates the new metadata, then seqid++ and both copies, primary first. */
async function commit(dev: BlockDevice, l: Loaded): Promise<void> {
  const json = serializeMetadata(l.meta.raw);
  const meta = parseMetadata(json, l.fields.hdrSize);
  l.fields.seqid += 1n;
  await writeHeaders(dev, l.fields, json);
  l.meta = meta;
}

function dataSegment(meta: Metadata): Segment {
  if (meta.requirements.length > 0) {
    throw new NbdcryptError('ENOTSUP', `this LUKS2 volume requires features nbdcrypt does not support (${meta.requirements.join(', ')}); finish them with cryptsetup first`);
  }
  const crypt = meta.segments.filter((s) => s.type === 'crypt');
  if (crypt.length !== 1 || meta.segments.length !== 1) throw new NbdcryptError('ENOTSUP', `this LUKS2 volume has ${meta.segments.length} segments (reencryption in progress?); nbdcrypt supports exactly one crypt segment`);
  const seg = crypt[0]!;
  if (seg.encryption !== 'aes-xts-plain64') throw new NbdcryptError('ENOTSUP', `data cipher ${seg.encryption} is not supported; nbdcrypt supports aes-xts-plain64 only`);
  return seg;
}

function digestFor(meta: Metadata, slot: number): Metadata['digests'][number] | undefined {
  return meta.digests.find((d) => d.keyslots.includes(slot));
}

/** Slots to try in cryptsetup's order: preferred (priority 2) first, then normal; ignored (0) only when named. */
function candidateSlots(meta: Metadata, segment: Segment, keySlot?: number): Keyslot[] {
  if (keySlot !== undefined) {
    const ks = meta.keyslots.find((k) => k.id === keySlot);
    if (!ks) throw new NbdcryptError('ENOKEY', `keyslot ${keySlot} is not in use; no data was changed`);
    return [ks];
  }
  const bound = meta.keyslots.filter((k) => digestFor(meta, k.id)?.segments.includes(segment.id));
  return [...bound.filter((k) => k.priority === 2), ...bound.filter((k) => k.priority === 1)];
}

async function unlock(dev: BlockDevice, l: Loaded, passphrase: Buffer, keySlot?: number): Promise<{ key: Buffer; slot: number }> {
  const seg = dataSegment(l.meta);
  const slots = candidateSlots(l.meta, seg, keySlot);
  let unsupported: NbdcryptError | undefined;
  let unsupportedCount = 0;
  for (const ks of slots) {
    const d = digestFor(l.meta, ks.id);
    if (!d) continue;
    let key: Buffer;
    try {
      key = await openKeyslot(dev, ks, passphrase);
    } catch (e) {
      if (e instanceof NbdcryptError && e.code === 'ENOTSUP') {
        unsupported = e;
        unsupportedCount++;
        continue;
      }
      throw e;
    }
    if (await verifyDigest(d, key)) return { key, slot: ks.id };
    key.fill(0);
  }
  if (slots.length === 0) throw new NbdcryptError('ENOKEY', 'no usable keyslot in this LUKS2 header; restore a header backup; no data was changed');
  if (unsupported && unsupportedCount === slots.length) throw new NbdcryptError('ENOTSUP', `${unsupported.message}; no data was changed`);
  const which = slots.length === 1 ? `keyslot ${slots[0]!.id}` : `keyslots ${slots.map((k) => k.id).join(',')}`;
  throw new NbdcryptError('ENOKEY', `wrong passphrase for ${which}${unsupported ? ` (${unsupported.message})` : ''}; no data was changed`);
}

function describe(l: Loaded, dev: BlockDevice, key: Buffer, slot: number): OpenedVolume {
  const seg = dataSegment(l.meta);
  if (dev.size < seg.offset + seg.sectorSize) {
    key.fill(0);
    throw new NbdcryptError('EBADHDR', `the device holds ${dev.size} bytes, less than the LUKS2 data area that starts at byte ${seg.offset}; the image was truncated (restore it to its full size)`);
  }
  const avail = Math.max(0, dev.size - seg.offset);
  const dataSize = seg.size === 'dynamic' ? avail - (avail % seg.sectorSize) : seg.size;
  return { volumeKey: key, dataOffset: seg.offset, sectorSize: seg.sectorSize, ivTweak: seg.ivTweak, keyslot: slot, uuid: l.fields.uuid, label: l.fields.label, dataSize };
}

/** Rewrites damaged or stale copies from the chosen one (same seqid, fresh salt), as cryptsetup does. */
async function repair(dev: BlockDevice, l: Loaded): Promise<void> {
  if (!l.read || l.read.stale.length === 0 || dev.caps.readOnly) return;
  await writeHeaders(dev, l.fields, serializeMetadata(l.meta.raw), l.read.stale);
  log.warn(`LUKS2 ${l.read.stale.join(' and ')} header copy was damaged or out of date and has been rewritten from the ${l.read.chosen.which}`);
}

/**
 * Unlocks the volume with `passphrase` (all keyslots, or the one given). Writes nothing unless
 * it repairs a damaged header copy after a successful unlock. The passphrase is not modified
 * (the caller wipes it); the returned volumeKey belongs to the caller, who wipes it too.
 */
export async function openVolume(dev: BlockDevice, passphrase: Buffer, opts: { keySlot?: number } = {}): Promise<OpenedVolume> {
  const l = await load(dev);
  const { key, slot } = await unlock(dev, l, passphrase, opts.keySlot);
  if (key.length !== 64) {
    key.fill(0);
    throw new NbdcryptError('ENOTSUP', `the volume key is ${key.length * 8} bits; nbdcrypt supports aes-xts-plain64 with 512-bit keys only (cryptsetup's default)`);
  }
  await repair(dev, l);
  return describe(l, dev, key, slot);
}

/**
 * Throws EEXIST if `dev` holds a LUKS header (either copy, at any allowed offset) or its first
 * MiB is not all zeroes. The CLI calls it before asking for a passphrase; formatVolume calls
 * it again unless `force`.
 */
export async function refuseNonEmpty(dev: BlockDevice): Promise<void> {
  try {
    const r = await readHeaders(dev);
    throw new NbdcryptError('EEXIST', `the device already holds a LUKS2 header (UUID ${r.chosen.uuid}); formatting destroys its data — use --force to do it anyway`);
  } catch (e) {
    if (e instanceof NbdcryptError && e.code === 'EEXIST') throw e;
  }
  const head = await dev.read(0, Math.min(dev.size, 1 << 20));
  if (head.subarray(0, 6).equals(MAGIC_PRIMARY)) throw new NbdcryptError('EEXIST', 'the device starts with a LUKS header (damaged or LUKS1); use --force to overwrite it');
  if (head.some((b) => b !== 0)) throw new NbdcryptError('EEXIST', 'the device is not empty (its first MiB holds non-zero bytes: a filesystem or partition table?); use --force to overwrite it');
  for (const off of HDR_SIZES) {
    if (off < head.length || off + 6 > dev.size) continue;
    if ((await dev.read(off, 6)).subarray(0, 4).toString('latin1') === 'SKUL') throw new NbdcryptError('EEXIST', `the device holds a LUKS2 secondary header at ${off}; use --force to overwrite it`);
  }
}

function kdfChoice(o: NewKeyOptions | FormatOptions): KdfChoice {
  return { pbkdf: o.pbkdf, iterTimeMs: o.iterTimeMs, memoryKiB: o.pbkdfMemoryKiB, parallel: o.pbkdfParallel, forceIterations: o.pbkdfForceIterations };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Creates a LUKS2 volume with one keyslot (0) for `passphrase`, laid out like cryptsetup's defaults. */
export async function formatVolume(dev: BlockDevice, passphrase: Buffer, opts: FormatOptions = {}): Promise<OpenedVolume> {
  checkWritable(dev, 'format');
  const sectorSize = opts.sectorSize ?? 4096;
  if (sectorSize !== 512 && sectorSize !== 4096) throw new NbdcryptError('EUSAGE', `sector size ${String(sectorSize)} is not supported; use 512 or 4096`);
  const uuid = (opts.uuid ?? randomUUID()).toLowerCase();
  if (!UUID_RE.test(uuid)) throw new NbdcryptError('EUSAGE', `UUID '${opts.uuid}' is not of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`);
  const label = opts.label ?? '';
  if (Buffer.byteLength(label) > 47) throw new NbdcryptError('EUSAGE', `label '${label}' is too long: at most 47 bytes`);
  const dataOffset = opts.dataOffset ?? DEFAULT_DATA_OFFSET;
  if (dataOffset !== 0 && dataOffset !== DEFAULT_DATA_OFFSET) throw new NbdcryptError('EUSAGE', `data offset ${dataOffset} is not supported; use ${DEFAULT_DATA_OFFSET} or 0 (detached header)`);
  const minSize = dataOffset === 0 ? DEFAULT_DATA_OFFSET : DEFAULT_DATA_OFFSET + sectorSize;
  if (dev.size < minSize) throw new NbdcryptError('EUSAGE', `the device (${dev.size} bytes) is too small: LUKS2 needs 16 MiB of metadata plus at least one ${sectorSize}-byte sector`);
  if (dataOffset !== 0 && (dev.size - DEFAULT_DATA_OFFSET) % sectorSize !== 0) throw new NbdcryptError('EUSAGE', `the device size ${dev.size} is not a multiple of the ${sectorSize}-byte sector size; resize it or use --sector-size 512`);
  if (opts.volumeKey && opts.volumeKey.length !== 64) throw new NbdcryptError('EUSAGE', 'the volume key must be 64 bytes (aes-xts-plain64, 512 bits)');
  if (!opts.force) await refuseNonEmpty(dev);

  if (opts.volumeKey && opts.volumeKey.subarray(0, 32).equals(opts.volumeKey.subarray(32))) throw new NbdcryptError('EUSAGE', 'the two halves of an XTS volume key must differ; use a random key');
  let key = opts.volumeKey ? Buffer.from(opts.volumeKey) : randomBytes(64);
  while (key.subarray(0, 32).equals(key.subarray(32))) key = randomBytes(64);
  const kdf = await chooseKdf(kdfChoice(opts));
  const iterations = opts.pbkdfForceIterations !== undefined ? DIGEST_MIN_ITERATIONS : await benchmarkDigestIterations(64);
  const digest = await createDigest(key, iterations);

  // Random bytes over the whole keyslots area first (hides which part is in use).
  const start = 2 * DEFAULT_HDR_SIZE;
  for (let off = start; off < start + DEFAULT_KEYSLOTS_SIZE; off += 4 << 20) {
    await dev.write(off, randomBytes(Math.min(4 << 20, start + DEFAULT_KEYSLOTS_SIZE - off)));
  }
  const areaSize = keyslotAreaSize(64);
  await storeKeyslot(dev, { areaOffset: start, areaSize, kdf }, key, passphrase);
  const raw: JsonObject = {
    keyslots: { '0': keyslotJson({ keySize: 64, areaOffset: start, areaSize, kdf }) },
    tokens: {},
    segments: { '0': segmentJson({ offset: dataOffset, sectorSize }) },
    digests: { '0': digestJson({ keyslots: [0], segments: [0], ...digest }) },
    config: { json_size: String(DEFAULT_HDR_SIZE - 4096), keyslots_size: String(DEFAULT_KEYSLOTS_SIZE) },
  };
  const l: Loaded = {
    meta: parseMetadata(serializeMetadata(raw), DEFAULT_HDR_SIZE),
    fields: { hdrSize: DEFAULT_HDR_SIZE, seqid: 0n, label, checksumAlg: 'sha256', uuid, subsystem: '' },
  };
  await commit(dev, l);
  kdf.salt.fill(0);
  return describe(l, dev, key, 0);
}

function rawObj(v: Json | undefined): JsonObject {
  return v as JsonObject;
}

function checkSlotNumber(n: number): void {
  if (!Number.isInteger(n) || n < 0 || n >= MAX_KEYSLOTS) throw new NbdcryptError('EUSAGE', `keyslot ${n} is out of range 0 … ${MAX_KEYSLOTS - 1}`);
}

/** Adds a keyslot for `newPassphrase`, authorised by `passphrase`; returns its number. */
export async function addKey(dev: BlockDevice, passphrase: Buffer, newPassphrase: Buffer, opts: NewKeyOptions = {}): Promise<number> {
  checkWritable(dev, 'add key');
  const l = await load(dev);
  const { key, slot: authSlot } = await unlock(dev, l, passphrase);
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
    const kdf = await chooseKdf(kdfChoice(opts));
    await storeKeyslot(dev, { areaOffset, areaSize, kdf }, key, newPassphrase);
    rawObj(l.meta.raw.keyslots)[String(slot)] = keyslotJson({ keySize: key.length, areaOffset, areaSize, kdf });
    const d = digestFor(l.meta, authSlot)!;
    (rawObj(rawObj(l.meta.raw.digests)[String(d.id)]).keyslots as Json[]).push(String(slot));
    await commit(dev, l);
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
export async function removeKey(dev: BlockDevice, passphrase: Buffer, opts: { keySlot?: number; force?: boolean } = {}): Promise<number> {
  checkWritable(dev, 'remove key');
  const l = await load(dev);
  if (opts.keySlot !== undefined) {
    checkSlotNumber(opts.keySlot);
    if (!l.meta.keyslots.some((k) => k.id === opts.keySlot)) throw new NbdcryptError('EUSAGE', `keyslot ${opts.keySlot} is not in use`);
  }
  const { key, slot: opened } = await unlock(dev, l, passphrase);
  key.fill(0);
  const slot = opts.keySlot ?? opened;
  if (l.meta.keyslots.length === 1 && !opts.force) {
    throw new NbdcryptError('EUSAGE', `keyslot ${slot} is the last one; removing it makes the data unreadable forever — use --force if that is what you want`);
  }
  const ks = l.meta.keyslots.find((k) => k.id === slot)!;
  dropSlot(l.meta.raw, slot);
  await commit(dev, l);
  await dev.write(ks.areaOffset, randomBytes(ks.areaSize));
  await dev.flush();
  return slot;
}

/** Replaces the passphrase of the keyslot `passphrase` opens (or `keySlot`), keeping its number. */
export async function changeKey(dev: BlockDevice, passphrase: Buffer, newPassphrase: Buffer, opts: NewKeyOptions = {}): Promise<number> {
  checkWritable(dev, 'change key');
  const l = await load(dev);
  if (opts.keySlot !== undefined) checkSlotNumber(opts.keySlot);
  const { key, slot } = await unlock(dev, l, passphrase, opts.keySlot);
  try {
    const old = l.meta.keyslots.find((k) => k.id === slot)!;
    const areaSize = keyslotAreaSize(key.length);
    let areaOffset: number;
    try {
      areaOffset = findAreaGap(l.meta, l.fields.hdrSize, areaSize);
    } catch {
      areaOffset = findAreaGap(l.meta, l.fields.hdrSize, areaSize, slot); // no spare room: overwrite in place
    }
    const kdf = await chooseKdf(kdfChoice(opts));
    await storeKeyslot(dev, { areaOffset, areaSize, kdf }, key, newPassphrase);
    rawObj(l.meta.raw.keyslots)[String(slot)] = keyslotJson({ keySize: key.length, areaOffset, areaSize, kdf, priority: old.priority });
    await commit(dev, l);
    if (areaOffset !== old.areaOffset) {
      await dev.write(old.areaOffset, randomBytes(old.areaSize));
      await dev.flush();
    }
    return slot;
  } finally {
    key.fill(0);
  }
}

/** The header and keyslot areas (2·hdr_size + keyslots_size bytes), as cryptsetup luksHeaderBackup saves them. */
export async function backupHeader(dev: BlockDevice): Promise<Buffer> {
  const l = await load(dev);
  return dev.read(0, 2 * l.fields.hdrSize + l.meta.keyslotsSize);
}

/** Validates `backup` completely, then writes it over the device's header and keyslot areas. */
export async function restoreHeader(dev: BlockDevice, backup: Buffer, opts: { force?: boolean } = {}): Promise<void> {
  checkWritable(dev, 'restore header');
  const { MemoryDevice } = await import('../block/memory-device.js');
  const mem = new MemoryDevice(backup.length);
  await mem.write(0, backup);
  let b: Loaded;
  try {
    b = await load(mem);
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
    let current: Loaded | undefined;
    try {
      current = await load(dev);
    } catch {
      current = undefined;
    }
    if (current && current.fields.uuid !== b.fields.uuid) {
      throw new NbdcryptError('EEXIST', `the device holds a different LUKS2 volume (UUID ${current.fields.uuid}, backup ${b.fields.uuid}); use --force to replace its header; nothing was written`);
    }
  }
  await dev.write(0, backup.subarray(0, span));
  await dev.flush();
  await repair(dev, b);
}

/** `cryptsetup luksDump` text for the device; `deviceName` is used by the volume-key form. */
export async function dumpHeader(dev: BlockDevice, opts: { passphrase?: Buffer; keySlot?: number; deviceName?: string } = {}): Promise<string> {
  const l = await load(dev);
  if (opts.passphrase === undefined) return formatDump(l.fields, l.meta);
  const { key } = await unlock(dev, l, opts.passphrase, opts.keySlot);
  try {
    return formatVolumeKeyDump(opts.deviceName ?? 'device', l.fields, dataSegment(l.meta), key);
  } finally {
    key.fill(0);
  }
}
