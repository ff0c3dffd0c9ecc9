/**
 * LUKS2 binary header codec: the two 4096-byte `luks2_hdr_disk` structures, each followed by
 * its JSON area, their checksums (hash over the binary header with the csum field zeroed plus
 * the whole NUL-padded JSON area), the reader that picks the valid copy with the higher seqid
 * (scanning the allowed hdr_size offsets for the secondary when the primary is unreadable), and
 * the crash-safe writer (primary fully, flush, then secondary, flush).
 * Spec: docs/formats.md (LUKS2 layout, LUKS2 binary header).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { BlockDevice } from '../block/block-device.js';
import { NbdcryptError } from '../errors.js';

export const BINARY_HEADER_SIZE = 4096;
export const MAGIC_PRIMARY = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]); // "LUKS\xba\xbe"
export const MAGIC_SECONDARY = Buffer.from([0x53, 0x4b, 0x55, 0x4c, 0xba, 0xbe]); // "SKUL\xba\xbe"
/** Allowed hdr_size values; also where a reader looks for the secondary copy (LUKS2_HDR2_OFFSETS). */
export const HDR_SIZES: readonly number[] = [0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000];

const OFF = { magic: 0, version: 6, hdrSize: 8, seqid: 16, label: 24, csumAlg: 72, salt: 104, uuid: 168, subsystem: 208, hdrOffset: 256, csum: 448 } as const;
const LEN = { label: 48, csumAlg: 32, salt: 64, uuid: 40, subsystem: 48, csum: 64 } as const;

/** Checksum algorithms we accept: cryptsetup writes sha256; sha1/sha512 are valid too. */
const CSUM_LENGTHS: Record<string, number> = { sha1: 20, sha256: 32, sha512: 64 };

export interface HeaderFields {
  hdrSize: number;
  seqid: bigint;
  label: string;
  checksumAlg: string;
  uuid: string;
  subsystem: string;
}

export interface HeaderCopy extends HeaderFields {
  which: 'primary' | 'secondary';
  hdrOffset: number;
  salt: Buffer;
  /** JSON text, without its NUL padding. */
  json: string;
}

export interface HeaderReadResult {
  primary: HeaderCopy | NbdcryptError;
  secondary: HeaderCopy | NbdcryptError;
  /** The copy to trust: valid, and with the higher seqid when both are valid. */
  chosen: HeaderCopy;
  /** Copies that must be rewritten (damaged, or older seqid than the chosen one). */
  stale: Array<'primary' | 'secondary'>;
}

function bad(msg: string): NbdcryptError {
  return new NbdcryptError('EBADHDR', msg);
}

function cString(buf: Buffer, start: number, len: number, field: string, where: string): string {
  const raw = buf.subarray(start, start + len);
  const nul = raw.indexOf(0);
  if (nul < 0) throw bad(`LUKS2 ${where} header: field ${field} is not NUL-terminated; the header is damaged`);
  return raw.subarray(0, nul).toString('utf8');
}

function putCString(buf: Buffer, start: number, len: number, value: string, field: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length >= len) throw new NbdcryptError('EUSAGE', `${field} '${value}' is too long: at most ${len - 1} bytes`);
  buf.fill(0, start, start + len);
  bytes.copy(buf, start);
}

/** Hash over the binary header (csum zeroed) and the whole JSON area. */
export function headerChecksum(copy: Buffer, alg: string): Buffer {
  const h = createHash(alg);
  const bin = Buffer.from(copy.subarray(0, BINARY_HEADER_SIZE));
  bin.fill(0, OFF.csum, OFF.csum + LEN.csum);
  h.update(bin);
  h.update(copy.subarray(BINARY_HEADER_SIZE));
  return h.digest();
}

/** Quick look at a 4096-byte binary header: only the size, so the reader knows how much to fetch. */
export function peekHdrSize(bin: Buffer, which: 'primary' | 'secondary'): number {
  const magic = which === 'primary' ? MAGIC_PRIMARY : MAGIC_SECONDARY;
  if (!bin.subarray(0, 6).equals(magic)) throw bad(`LUKS2 ${which} header: no LUKS magic; this is not a LUKS device or the header is damaged`);
  if (bin.readUInt16BE(OFF.version) !== 2) throw bad(`LUKS2 ${which} header: version ${bin.readUInt16BE(OFF.version)} is not 2; only LUKS2 is supported`);
  const size = bin.readBigUInt64BE(OFF.hdrSize);
  if (!HDR_SIZES.includes(Number(size)) || size > 0x400000n) throw bad(`LUKS2 ${which} header: hdr_size ${size} is not one of the allowed sizes (16 KiB … 4 MiB, power of two)`);
  return Number(size);
}

/**
 * Decodes one header copy (binary header + JSON area, `hdrSize` bytes) read from byte
 * `readOffset`. Throws EBADHDR naming what is wrong.
 */
export function decodeHeaderCopy(copy: Buffer, readOffset: number, which: 'primary' | 'secondary'): HeaderCopy {
  if (copy.length < BINARY_HEADER_SIZE) throw bad(`LUKS2 ${which} header: only ${copy.length} bytes could be read`);
  const hdrSize = peekHdrSize(copy, which);
  if (copy.length !== hdrSize) throw bad(`LUKS2 ${which} header: hdr_size ${hdrSize} does not match the ${copy.length} bytes read`);
  const hdrOffset = copy.readBigUInt64BE(OFF.hdrOffset);
  if (hdrOffset !== BigInt(readOffset)) throw bad(`LUKS2 ${which} header: hdr_offset ${hdrOffset} differs from where it was read (${readOffset})`);
  if (which === 'secondary' && readOffset !== hdrSize) throw bad(`LUKS2 secondary header: found at ${readOffset} but its hdr_size is ${hdrSize}`);
  const where = which;
  const checksumAlg = cString(copy, OFF.csumAlg, LEN.csumAlg, 'checksum_alg', where);
  const csumLen = CSUM_LENGTHS[checksumAlg];
  if (csumLen === undefined) throw bad(`LUKS2 ${which} header: checksum_alg '${checksumAlg}' is not supported (sha256, sha1, sha512)`);
  const stored = copy.subarray(OFF.csum, OFF.csum + csumLen);
  const computed = headerChecksum(copy, checksumAlg);
  if (!computed.equals(stored)) throw bad(`LUKS2 ${which} header: checksum mismatch; the header is damaged`);
  const label = cString(copy, OFF.label, LEN.label, 'label', where);
  const uuid = cString(copy, OFF.uuid, LEN.uuid, 'uuid', where);
  const subsystem = cString(copy, OFF.subsystem, LEN.subsystem, 'subsystem', where);
  const area = copy.subarray(BINARY_HEADER_SIZE);
  const end = area.indexOf(0);
  if (end < 0) throw bad(`LUKS2 ${which} header: JSON area is not NUL-terminated`);
  for (let i = end; i < area.length; i++) {
    if (area[i] !== 0) throw bad(`LUKS2 ${which} header: non-NUL bytes after the JSON text at JSON offset ${i}`);
  }
  if (area[0] !== 0x7b) throw bad(`LUKS2 ${which} header: JSON area does not start with '{'`);
  const json = area.subarray(0, end).toString('utf8');
  return {
    which,
    hdrSize,
    hdrOffset: readOffset,
    seqid: copy.readBigUInt64BE(OFF.seqid),
    label,
    checksumAlg,
    salt: Buffer.from(copy.subarray(OFF.salt, OFF.salt + LEN.salt)),
    uuid,
    subsystem,
    json,
  };
}

/** Encodes one copy with a fresh salt and its checksum; `json` must fit the JSON area with a NUL. */
export function encodeHeaderCopy(f: HeaderFields, json: string, which: 'primary' | 'secondary'): Buffer {
  const csumLen = CSUM_LENGTHS[f.checksumAlg];
  if (csumLen === undefined) throw bad(`checksum_alg '${f.checksumAlg}' is not supported`);
  if (!HDR_SIZES.includes(f.hdrSize)) throw bad(`hdr_size ${f.hdrSize} is not an allowed LUKS2 metadata size`);
  const copy = Buffer.alloc(f.hdrSize);
  const text = Buffer.from(json, 'utf8');
  if (text.length > f.hdrSize - BINARY_HEADER_SIZE - 1) {
    throw bad(`LUKS2 JSON metadata (${text.length} bytes) does not fit the ${f.hdrSize - BINARY_HEADER_SIZE}-byte JSON area`);
  }
  (which === 'primary' ? MAGIC_PRIMARY : MAGIC_SECONDARY).copy(copy, OFF.magic);
  copy.writeUInt16BE(2, OFF.version);
  copy.writeBigUInt64BE(BigInt(f.hdrSize), OFF.hdrSize);
  copy.writeBigUInt64BE(f.seqid, OFF.seqid);
  putCString(copy, OFF.label, LEN.label, f.label, 'label');
  putCString(copy, OFF.csumAlg, LEN.csumAlg, f.checksumAlg, 'checksum algorithm');
  randomBytes(LEN.salt).copy(copy, OFF.salt);
  putCString(copy, OFF.uuid, LEN.uuid, f.uuid, 'uuid');
  putCString(copy, OFF.subsystem, LEN.subsystem, f.subsystem, 'subsystem');
  copy.writeBigUInt64BE(BigInt(which === 'primary' ? 0 : f.hdrSize), OFF.hdrOffset);
  text.copy(copy, BINARY_HEADER_SIZE);
  headerChecksum(copy, f.checksumAlg).copy(copy, OFF.csum);
  return copy;
}

function asError(e: unknown): NbdcryptError {
  if (e instanceof NbdcryptError) return e;
  return bad(`LUKS2 header: ${e instanceof Error ? e.message : String(e)}`);
}

async function readCopyAt(dev: BlockDevice, offset: number, which: 'primary' | 'secondary'): Promise<HeaderCopy> {
  if (offset + BINARY_HEADER_SIZE > dev.size) throw bad(`LUKS2 ${which} header: the ${dev.size}-byte device is too small to hold it`);
  const bin = await dev.read(offset, BINARY_HEADER_SIZE);
  const size = peekHdrSize(bin, which);
  if (offset + size > dev.size) throw bad(`LUKS2 ${which} header: hdr_size ${size} reaches past the end of the device`);
  const copy = size === BINARY_HEADER_SIZE ? bin : Buffer.concat([bin, await dev.read(offset + BINARY_HEADER_SIZE, size - BINARY_HEADER_SIZE)]);
  return decodeHeaderCopy(copy, offset, which);
}

/** Messages of a copy that is simply not there (as opposed to one that is damaged). */
const NOT_THERE = /no LUKS magic|too small to hold it/;

/** Runs the caller's metadata check; its error names the copy (the metadata check does not know it). */
function validateCopy(c: HeaderCopy, validate: (copy: HeaderCopy) => void): void {
  try {
    validate(c);
  } catch (e) {
    if (e instanceof NbdcryptError) throw new NbdcryptError(e.code, `LUKS2 ${c.which} header: ${e.message.replace(/^LUKS2 /, '')}`, { cause: e });
    throw e;
  }
}

/**
 * Reads both copies. The secondary is looked for at the primary's hdr_size when the primary
 * is readable, else at every allowed offset (first valid one wins). Throws EBADHDR when
 * neither copy is valid; `validate` lets the caller reject a copy whose JSON is invalid.
 */
export async function readHeaders(dev: BlockDevice, validate: (copy: HeaderCopy) => void = () => {}): Promise<HeaderReadResult> {
  let primary: HeaderCopy | NbdcryptError;
  try {
    primary = await readCopyAt(dev, 0, 'primary');
    validateCopy(primary, validate);
  } catch (e) {
    primary = asError(e);
  }
  let secondary: HeaderCopy | NbdcryptError = bad('LUKS2 secondary header: not found at any allowed offset');
  // When scanning, a copy with the secondary magic that fails a check is damaged, not absent.
  let damaged: NbdcryptError | undefined;
  const offsets = primary instanceof NbdcryptError ? HDR_SIZES : [primary.hdrSize];
  for (const off of offsets) {
    try {
      const c = await readCopyAt(dev, off, 'secondary');
      validateCopy(c, validate);
      secondary = c;
      break;
    } catch (e) {
      const err = asError(e);
      if (!(primary instanceof NbdcryptError)) secondary = err;
      else if (!NOT_THERE.test(err.message)) damaged ??= err;
    }
  }
  if (secondary instanceof NbdcryptError && damaged) secondary = damaged;
  if (primary instanceof NbdcryptError && secondary instanceof NbdcryptError) {
    const notLuks = NOT_THERE.test(primary.message) && secondary.message.includes('not found');
    throw bad(
      notLuks
        ? 'no LUKS2 header found (neither primary nor secondary copy); is this the right device?'
        : `both LUKS2 header copies are unusable (${primary.message === secondary.message ? primary.message : `${primary.message}; ${secondary.message}`}); restore a header backup with 'nbdcrypt header restore'`,
    );
  }
  let chosen: HeaderCopy;
  const stale: Array<'primary' | 'secondary'> = [];
  if (primary instanceof NbdcryptError) {
    chosen = secondary as HeaderCopy;
    stale.push('primary');
  } else if (secondary instanceof NbdcryptError) {
    chosen = primary;
    stale.push('secondary');
  } else if (secondary.seqid > primary.seqid) {
    chosen = secondary;
    stale.push('primary');
  } else {
    chosen = primary;
    if (secondary.seqid < primary.seqid || secondary.hdrSize !== primary.hdrSize) stale.push('secondary');
  }
  return { primary, secondary, chosen, stale };
}

/**
 * Writes the given copies (both by default) in order primary → secondary, flushing after each,
 * so a crash leaves at least one complete copy. The caller bumps seqid for a metadata change.
 */
export async function writeHeaders(dev: BlockDevice, f: HeaderFields, json: string, which: ReadonlyArray<'primary' | 'secondary'> = ['primary', 'secondary']): Promise<void> {
  for (const w of ['primary', 'secondary'] as const) {
    if (!which.includes(w)) continue;
    const copy = encodeHeaderCopy(f, json, w);
    await dev.write(w === 'primary' ? 0 : f.hdrSize, copy);
    await dev.flush();
  }
}
