/**
 * A LUKS2 header as the volume operations hold it between reading and writing: the binary
 * header fields, the validated metadata, and how the copies were found (which one was chosen,
 * which ones are damaged or stale). `loadHeader` reads and validates both copies,
 * `commitHeader` writes a metadata change (seqid++, both copies, primary first) and
 * `repairHeader` rewrites a damaged or stale copy from the chosen one, as cryptsetup does.
 * Spec: docs/formats.md (LUKS2 layout, LUKS2 binary header).
 */
import type { BlockDevice } from '../block/block-device.js';
import { checkKeySize, parseCipherSpec } from '../crypt/cipher-spec.js';
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';
import { readHeaders, writeHeaders, type HeaderFields, type HeaderReadResult } from './luks2-header.js';
import { parseMetadata, type Metadata, type Segment } from './luks2-metadata.js';
import { serializeMetadata } from './luks2-metadata-json.js';

export interface LoadedHeader {
  /** How the header was read; absent for a header built in memory (format). */
  read?: HeaderReadResult;
  meta: Metadata;
  fields: HeaderFields;
}

/** What opening a volume yields: the key and where the data is. */
export interface OpenedVolume {
  format: 'LUKS1' | 'LUKS2';
  /** The data cipher in cryptsetup's notation, e.g. "aes-xts-plain64", "twofish-cbc-essiv:sha256". */
  cipher: string;
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

const metaCache = new WeakMap<object, Metadata>();

/** Reads both header copies; a copy whose JSON fails validation counts as damaged. */
export async function loadHeader(dev: BlockDevice): Promise<LoadedHeader> {
  const read = await readHeaders(dev, (c) => {
    metaCache.set(c, parseMetadata(c.json, c.hdrSize));
  });
  const c = read.chosen;
  const meta = metaCache.get(c)!;
  return { read, meta, fields: { hdrSize: c.hdrSize, seqid: c.seqid, label: c.label, checksumAlg: c.checksumAlg, uuid: c.uuid, subsystem: c.subsystem } };
}

/** Validates the new metadata, then seqid++ and both copies, primary first. */
export async function commitHeader(dev: BlockDevice, l: LoadedHeader): Promise<void> {
  const json = serializeMetadata(l.meta.raw);
  const meta = parseMetadata(json, l.fields.hdrSize);
  l.fields.seqid += 1n;
  await writeHeaders(dev, l.fields, json);
  l.meta = meta;
}

/** Rewrites damaged or stale copies from the chosen one (same seqid, fresh salt), as cryptsetup does. */
export async function repairHeader(dev: BlockDevice, l: LoadedHeader): Promise<void> {
  if (!l.read || l.read.stale.length === 0 || dev.caps.readOnly) return;
  await writeHeaders(dev, l.fields, serializeMetadata(l.meta.raw), l.read.stale);
  log.warn(`LUKS2 ${l.read.stale.join(' and ')} header copy was damaged or out of date and has been rewritten from the ${l.read.chosen.which}`);
}

/**
 * One line saying that a header copy is damaged, for commands that do not repair it (a
 * read-only device, dump); undefined when both copies are good or one is merely older.
 */
export function damagedCopyWarning(l: LoadedHeader): string | undefined {
  if (!l.read) return undefined;
  for (const which of ['primary', 'secondary'] as const) {
    const c = l.read[which];
    if (c instanceof NbdcryptError) {
      return `${c.message}; using the ${l.read.chosen.which} copy (the ${which} is rewritten when the volume is next opened writable)`;
    }
  }
  return undefined;
}

/** The one data segment nbdcrypt can serve, or ENOTSUP saying why not. */
export function dataSegment(meta: Metadata): Segment {
  if (meta.requirements.length > 0) {
    throw new NbdcryptError('ENOTSUP', `this LUKS2 volume requires features nbdcrypt does not support (${meta.requirements.join(', ')}); finish them with cryptsetup first`);
  }
  const crypt = meta.segments.filter((s) => s.type === 'crypt');
  if (crypt.length !== 1 || meta.segments.length !== 1) throw new NbdcryptError('ENOTSUP', `this LUKS2 volume has ${meta.segments.length} segments (reencryption in progress?); nbdcrypt supports exactly one crypt segment`);
  const seg = crypt[0]!;
  // An unsupported spec is EBADHDR naming it (cipher-spec.ts), before any keyslot is tried.
  parseCipherSpec(seg.encryption);
  return seg;
}

/**
 * The opened volume for `key`. Refuses (EBADHDR) a key size the data cipher does not take, and
 * a data segment that starts past the end of the device or holds not one whole sector: the
 * header belongs to a bigger device.
 */
export function describeVolume(l: LoadedHeader, dev: BlockDevice, key: Buffer, slot: number): OpenedVolume {
  const seg = dataSegment(l.meta);
  checkKeySize(parseCipherSpec(seg.encryption), key.length);
  if (seg.offset > 0 && seg.offset + seg.sectorSize > dev.size) {
    throw new NbdcryptError('EBADHDR', `LUKS2 data segment starts at byte ${seg.offset} (segments.${seg.id}.offset), but the device has only ${dev.size} bytes; the header belongs to another, larger device or is damaged; no data was changed`);
  }
  const avail = Math.max(0, dev.size - seg.offset);
  const dataSize = seg.size === 'dynamic' ? avail - (avail % seg.sectorSize) : seg.size;
  if (seg.size !== 'dynamic' && seg.offset + seg.size > dev.size) {
    throw new NbdcryptError('EBADHDR', `LUKS2 data segment [${seg.offset}, ${seg.offset + seg.size}) (segments.${seg.id}) reaches past the end of the ${dev.size}-byte device; the header belongs to another device or is damaged; no data was changed`);
  }
  return { format: 'LUKS2', cipher: seg.encryption, volumeKey: key, dataOffset: seg.offset, sectorSize: seg.sectorSize, ivTweak: seg.ivTweak, keyslot: slot, uuid: l.fields.uuid, label: l.fields.label, dataSize };
}
