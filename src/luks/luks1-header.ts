/**
 * LUKS1 header codec: the 592-byte `luks_phdr` at byte 0 (magic "LUKS\xba\xbe", version 1,
 * cipher name and mode, hash spec, payload offset in 512-byte sectors, volume key bytes, the
 * volume key digest with its salt and PBKDF2 iterations, UUID, then 8 keyslots of 48 bytes:
 * state, PBKDF2 iterations, salt, key material offset in sectors, AF stripes). LUKS1 has one
 * header copy and no checksum, so the reader checks what cryptsetup checks before it trusts
 * a field: the hash is one nbdcrypt computes, 4000 stripes, keyslot areas behind the header,
 * before the payload and not overlapping, and no field that is not NUL-terminated.
 * Spec: docs/formats.md (LUKS1 header).
 */
import { parseLuks1Cipher, type CipherSpec } from '../crypt/cipher-spec.js';
import { NbdcryptError } from '../errors.js';
import { hashLength, isSupportedHash } from './hash-functions.js';

export const LUKS1_PHDR_SIZE = 592;
export const LUKS1_MAGIC = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]);
export const LUKS1_KEYSLOTS = 8;
export const LUKS1_STRIPES = 4000;
export const LUKS1_DIGEST_SIZE = 20;
export const LUKS1_SALT_SIZE = 32;
/** The first keyslot area starts here; every area is aligned to it (LUKS_ALIGN_KEYSLOTS). */
export const LUKS1_ALIGN_KEYSLOTS = 4096;
export const KEY_ENABLED = 0x00ac71f3;
export const KEY_DISABLED = 0x0000dead;

const OFF = { version: 6, cipherName: 8, cipherMode: 40, hashSpec: 72, payloadOffset: 104, keyBytes: 108, mkDigest: 112, mkDigestSalt: 132, mkDigestIter: 164, uuid: 168, keyslots: 208 } as const;
const KS_SIZE = 48;

export interface Luks1Keyslot {
  readonly id: number;
  active: boolean;
  iterations: number;
  salt: Buffer;
  /** In 512-byte sectors. */
  readonly keyMaterialOffset: number;
  readonly stripes: number;
}

export interface Luks1Header {
  cipherName: string;
  cipherMode: string;
  hashSpec: string;
  /** In 512-byte sectors; 0 for a detached header. */
  payloadOffset: number;
  keyBytes: number;
  mkDigest: Buffer;
  mkDigestSalt: Buffer;
  mkDigestIterations: number;
  uuid: string;
  keyslots: Luks1Keyslot[];
}

function bad(msg: string): NbdcryptError {
  return new NbdcryptError('EBADHDR', `LUKS1 header: ${msg}`);
}

function cString(buf: Buffer, start: number, len: number, field: string): string {
  const raw = buf.subarray(start, start + len);
  const nul = raw.indexOf(0);
  if (nul < 0) throw bad(`field ${field} is not NUL-terminated; the header is damaged`);
  return raw.subarray(0, nul).toString('latin1');
}

function putCString(buf: Buffer, start: number, len: number, value: string, field: string): void {
  const bytes = Buffer.from(value, 'latin1');
  if (bytes.length >= len) throw new NbdcryptError('EUSAGE', `LUKS1 ${field} '${value}' is too long: at most ${len - 1} bytes`);
  bytes.copy(buf, start);
}

/** True when `buf` starts with the LUKS magic and version 1. */
export function isLuks1(buf: Buffer): boolean {
  return buf.length >= 8 && buf.subarray(0, 6).equals(LUKS1_MAGIC) && buf.readUInt16BE(OFF.version) === 1;
}

/** Sectors of AF material for a key: AF_split_sectors(keyBytes, stripes). */
export function afSectors(keyBytes: number, stripes = LUKS1_STRIPES): number {
  return Math.ceil((keyBytes * stripes) / 512);
}

/** End of the last keyslot area in sectors (LUKS_device_sectors): the least a device must hold. */
export function headerSectors(h: Luks1Header): number {
  return Math.max(...h.keyslots.map((k) => k.keyMaterialOffset)) + afSectors(h.keyBytes);
}

/** The data cipher the header names (EBADHDR naming the unsupported part). */
export function luks1CipherSpec(h: Luks1Header): CipherSpec {
  return parseLuks1Cipher(h.cipherName, h.cipherMode);
}

/** Checks what cryptsetup's LUKS_check_keyslots and header reader check. */
function validate(h: Luks1Header): void {
  if (!isSupportedHash(h.hashSpec)) throw bad(`hash '${h.hashSpec}' (hash-spec) is not supported`);
  if (hashLength(h.hashSpec) < LUKS1_DIGEST_SIZE) throw bad(`hash '${h.hashSpec}' is shorter than the ${LUKS1_DIGEST_SIZE}-byte digest`);
  if (h.keyBytes < 1 || h.keyBytes > 128) throw bad(`key-bytes ${h.keyBytes} is not a possible key size`);
  if (h.mkDigestIterations < 1) throw bad('mk-digest-iter is 0');
  const per = afSectors(h.keyBytes);
  for (const k of h.keyslots) {
    const where = `keyslot ${k.id}`;
    if (k.stripes !== LUKS1_STRIPES) throw bad(`${where} has ${k.stripes} stripes, not ${LUKS1_STRIPES}; the header is damaged`);
    if (k.keyMaterialOffset * 512 < LUKS1_PHDR_SIZE) throw bad(`${where} key material offset ${k.keyMaterialOffset} lies inside the header`);
    if (h.payloadOffset !== 0 && k.keyMaterialOffset + per > h.payloadOffset) throw bad(`${where} key material [${k.keyMaterialOffset}, ${k.keyMaterialOffset + per}) reaches into the payload at sector ${h.payloadOffset}`);
    if (k.active && k.iterations < 1) throw bad(`${where} is active with 0 iterations`);
  }
  const sorted = [...h.keyslots].sort((a, b) => a.keyMaterialOffset - b.keyMaterialOffset);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.keyMaterialOffset < sorted[i - 1]!.keyMaterialOffset + per) throw bad(`keyslot ${sorted[i - 1]!.id} key material overlaps keyslot ${sorted[i]!.id}`);
  }
}

/** Parses and validates the first LUKS1_PHDR_SIZE bytes of a device. */
export function parseLuks1Header(buf: Buffer): Luks1Header {
  if (buf.length < LUKS1_PHDR_SIZE) throw bad(`only ${buf.length} bytes, the header needs ${LUKS1_PHDR_SIZE}`);
  if (!buf.subarray(0, 6).equals(LUKS1_MAGIC)) throw bad('no LUKS magic; this is not a LUKS device or the header is damaged');
  const version = buf.readUInt16BE(OFF.version);
  if (version !== 1) throw bad(`version ${version} is not 1`);
  const keyslots: Luks1Keyslot[] = [];
  for (let i = 0; i < LUKS1_KEYSLOTS; i++) {
    const o = OFF.keyslots + i * KS_SIZE;
    const state = buf.readUInt32BE(o);
    if (state !== KEY_ENABLED && state !== KEY_DISABLED) throw bad(`keyslot ${i} state 0x${state.toString(16).padStart(8, '0')} is neither enabled nor disabled; the header is damaged`);
    keyslots.push({
      id: i,
      active: state === KEY_ENABLED,
      iterations: buf.readUInt32BE(o + 4),
      salt: Buffer.from(buf.subarray(o + 8, o + 8 + LUKS1_SALT_SIZE)),
      keyMaterialOffset: buf.readUInt32BE(o + 40),
      stripes: buf.readUInt32BE(o + 44),
    });
  }
  const h: Luks1Header = {
    cipherName: cString(buf, OFF.cipherName, 32, 'cipher-name'),
    cipherMode: cString(buf, OFF.cipherMode, 32, 'cipher-mode'),
    // cryptsetup stores and compares hash names in lower case.
    hashSpec: cString(buf, OFF.hashSpec, 32, 'hash-spec').toLowerCase(),
    payloadOffset: buf.readUInt32BE(OFF.payloadOffset),
    keyBytes: buf.readUInt32BE(OFF.keyBytes),
    mkDigest: Buffer.from(buf.subarray(OFF.mkDigest, OFF.mkDigest + LUKS1_DIGEST_SIZE)),
    mkDigestSalt: Buffer.from(buf.subarray(OFF.mkDigestSalt, OFF.mkDigestSalt + LUKS1_SALT_SIZE)),
    mkDigestIterations: buf.readUInt32BE(OFF.mkDigestIter),
    uuid: cString(buf, OFF.uuid, 40, 'uuid'),
    keyslots,
  };
  validate(h);
  return h;
}

/** The 592-byte on-disk form (validated first, so nbdcrypt never writes a header it would refuse). */
export function serializeLuks1Header(h: Luks1Header): Buffer {
  validate(h);
  const buf = Buffer.alloc(LUKS1_PHDR_SIZE);
  LUKS1_MAGIC.copy(buf, 0);
  buf.writeUInt16BE(1, OFF.version);
  putCString(buf, OFF.cipherName, 32, h.cipherName, 'cipher name');
  putCString(buf, OFF.cipherMode, 32, h.cipherMode, 'cipher mode');
  putCString(buf, OFF.hashSpec, 32, h.hashSpec, 'hash spec');
  buf.writeUInt32BE(h.payloadOffset, OFF.payloadOffset);
  buf.writeUInt32BE(h.keyBytes, OFF.keyBytes);
  h.mkDigest.copy(buf, OFF.mkDigest, 0, LUKS1_DIGEST_SIZE);
  h.mkDigestSalt.copy(buf, OFF.mkDigestSalt, 0, LUKS1_SALT_SIZE);
  buf.writeUInt32BE(h.mkDigestIterations, OFF.mkDigestIter);
  putCString(buf, OFF.uuid, 40, h.uuid, 'UUID');
  for (const k of h.keyslots) {
    const o = OFF.keyslots + k.id * KS_SIZE;
    buf.writeUInt32BE(k.active ? KEY_ENABLED : KEY_DISABLED, o);
    buf.writeUInt32BE(k.iterations, o + 4);
    k.salt.copy(buf, o + 8, 0, LUKS1_SALT_SIZE);
    buf.writeUInt32BE(k.keyMaterialOffset, o + 40);
    buf.writeUInt32BE(k.stripes, o + 44);
  }
  return buf;
}

/**
 * Keyslot areas as cryptsetup's LUKS_generate_phdr lays them out: the first at 4096 bytes,
 * each AF material size rounded up to 4096 bytes; returns the offsets (sectors) and the end.
 */
export function keyslotLayout(keyBytes: number): { offsets: number[]; end: number } {
  const align = LUKS1_ALIGN_KEYSLOTS / 512;
  const offsets: number[] = [];
  let at = align;
  for (let i = 0; i < LUKS1_KEYSLOTS; i++) {
    offsets.push(at);
    at = Math.ceil((at + afSectors(keyBytes)) / align) * align;
  }
  return { offsets, end: at };
}
