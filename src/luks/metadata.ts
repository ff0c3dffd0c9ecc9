/**
 * LUKS2 JSON metadata: validation as tables of checks (each failure names the field, e.g.
 * `keyslots.1.area.offset`), 64-bit numbers as decimal strings parsed with overflow checks,
 * typed views of keyslots/segments/digests, builders that produce objects in the key order
 * cryptsetup writes, and the compact writer (json-c PLAIN|NOSLASHESCAPE == JSON.stringify for
 * this content). Unknown optional fields are kept in `raw` and written back untouched.
 * Spec: docs/formats.md (LUKS2 JSON metadata).
 */
import { NbdcryptError } from '../errors.js';

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export const MAX_KEYSLOTS = 32;
export const MAX_TOKENS = 32;
export const MAX_SEGMENTS = 32;
export const MAX_DIGESTS = 8;
/** cryptsetup's LUKS2_MAX_KEYSLOTS_SIZE. */
export const MAX_KEYSLOTS_SIZE = 128 * 1024 * 1024;

export type Kdf =
  | { type: 'argon2id' | 'argon2i'; time: number; memory: number; cpus: number; salt: Buffer }
  | { type: 'pbkdf2'; hash: string; iterations: number; salt: Buffer };

export interface Keyslot {
  id: number;
  type: string;
  keySize: number;
  priority: number;
  afStripes: number;
  afHash: string;
  areaOffset: number;
  areaSize: number;
  areaEncryption: string;
  areaKeySize: number;
  kdf: Kdf;
}

export interface Segment {
  id: number;
  type: string;
  offset: number;
  size: number | 'dynamic';
  ivTweak: number;
  encryption: string;
  sectorSize: number;
  flags: string[];
}

export interface Digest {
  id: number;
  type: string;
  keyslots: number[];
  segments: number[];
  hash: string;
  iterations: number;
  salt: Buffer;
  digest: Buffer;
}

export interface Metadata {
  raw: JsonObject;
  keyslots: Keyslot[];
  segments: Segment[];
  digests: Digest[];
  jsonSize: number;
  keyslotsSize: number;
  flags: string[];
  requirements: string[];
}

function bad(path: string, why: string): NbdcryptError {
  return new NbdcryptError('EBADHDR', `LUKS2 metadata: ${path} ${why}; the header is damaged or was not written by a LUKS2 tool`);
}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type Kind = 'string' | 'int' | 'u64' | 'u64|dynamic' | 'b64' | 'object' | 'ids' | 'strings';
/** One row of a check table: field name, kind, mandatory. */
type Check = readonly [field: string, kind: Kind, required: boolean];

const U64_MAX = (1n << 64n) - 1n;

/** A decimal-string 64-bit number; must also fit a JS safe integer to be usable here. */
export function parseU64(v: Json | undefined, path: string): number {
  if (typeof v !== 'string' || !/^[0-9]{1,20}$/.test(v)) throw bad(path, 'must be a string of decimal digits');
  const n = BigInt(v);
  if (n > U64_MAX) throw bad(path, `value ${v} overflows 64 bits`);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(path, `value ${v} is larger than 2^53, which nbdcrypt does not support`);
  return Number(n);
}

function parseInt32(v: Json | undefined, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) throw bad(path, 'must be a 32-bit integer');
  return v;
}

function parseB64(v: Json | undefined, path: string): Buffer {
  if (typeof v !== 'string' || v.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw bad(path, 'must be standard base64');
  return Buffer.from(v, 'base64');
}

function parseIds(v: Json | undefined, path: string, max: number): number[] {
  if (!Array.isArray(v)) throw bad(path, 'must be an array of decimal strings');
  return v.map((e, i) => parseId(e, `${path}[${i}]`, max));
}

function parseId(v: Json | string | undefined, path: string, max: number): number {
  if (typeof v !== 'string' || !/^(0|[1-9][0-9]?)$/.test(v) || Number(v) >= max) throw bad(path, `must be an id "0".."${max - 1}"`);
  return Number(v);
}

/** Runs a check table over `obj`; returns the parsed values by field name. */
function runChecks(obj: Json | undefined, path: string, table: readonly Check[]): Record<string, unknown> {
  if (!isObject(obj)) throw bad(path, 'must be a JSON object');
  const out: Record<string, unknown> = {};
  for (const [field, kind, required] of table) {
    const v = obj[field];
    const p = `${path}.${field}`;
    if (v === undefined) {
      if (required) throw bad(p, 'is missing');
      continue;
    }
    switch (kind) {
      case 'string':
        if (typeof v !== 'string') throw bad(p, 'must be a string');
        out[field] = v;
        break;
      case 'int':
        out[field] = parseInt32(v, p);
        break;
      case 'u64':
        out[field] = parseU64(v, p);
        break;
      case 'u64|dynamic':
        out[field] = v === 'dynamic' ? 'dynamic' : parseU64(v, p);
        break;
      case 'b64':
        out[field] = parseB64(v, p);
        break;
      case 'object':
        if (!isObject(v)) throw bad(p, 'must be a JSON object');
        out[field] = v;
        break;
      case 'ids':
        out[field] = parseIds(v, p, MAX_KEYSLOTS);
        break;
      case 'strings':
        if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw bad(p, 'must be an array of strings');
        out[field] = v;
        break;
    }
  }
  return out;
}

const TOP: readonly Check[] = [
  ['keyslots', 'object', true],
  ['tokens', 'object', true],
  ['segments', 'object', true],
  ['digests', 'object', true],
  ['config', 'object', true],
];
const KEYSLOT: readonly Check[] = [
  ['type', 'string', true],
  ['key_size', 'int', true],
  ['priority', 'int', false],
  ['af', 'object', true],
  ['area', 'object', true],
  ['kdf', 'object', true],
];
const AF: readonly Check[] = [
  ['type', 'string', true],
  ['stripes', 'int', true],
  ['hash', 'string', true],
];
const AREA: readonly Check[] = [
  ['type', 'string', true],
  ['offset', 'u64', true],
  ['size', 'u64', true],
  ['encryption', 'string', true],
  ['key_size', 'int', true],
];
const KDF_ARGON: readonly Check[] = [
  ['type', 'string', true],
  ['time', 'int', true],
  ['memory', 'int', true],
  ['cpus', 'int', true],
  ['salt', 'b64', true],
];
const KDF_PBKDF2: readonly Check[] = [
  ['type', 'string', true],
  ['hash', 'string', true],
  ['iterations', 'int', true],
  ['salt', 'b64', true],
];
const SEGMENT: readonly Check[] = [
  ['type', 'string', true],
  ['offset', 'u64', true],
  ['size', 'u64|dynamic', true],
  ['iv_tweak', 'u64', true],
  ['encryption', 'string', true],
  ['sector_size', 'int', true],
  ['flags', 'strings', false],
  ['integrity', 'object', false],
];
const DIGEST: readonly Check[] = [
  ['type', 'string', true],
  ['keyslots', 'ids', true],
  ['segments', 'ids', true],
  ['hash', 'string', true],
  ['iterations', 'int', true],
  ['salt', 'b64', true],
  ['digest', 'b64', true],
];
const CONFIG: readonly Check[] = [
  ['json_size', 'u64', true],
  ['keyslots_size', 'u64', true],
  ['flags', 'strings', false],
  ['requirements', 'object', false],
];
const TOKEN: readonly Check[] = [
  ['type', 'string', true],
  ['keyslots', 'ids', true],
];

function entries(obj: JsonObject, path: string, max: number): Array<[number, JsonObject]> {
  const out: Array<[number, JsonObject]> = [];
  for (const [k, v] of Object.entries(obj)) {
    const id = parseId(k, `${path} key "${k}"`, max);
    if (!isObject(v)) throw bad(`${path}.${k}`, 'must be a JSON object');
    out.push([id, v]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

function parseKeyslot(id: number, o: JsonObject): Keyslot {
  const p = `keyslots.${id}`;
  const ks = runChecks(o, p, KEYSLOT);
  const af = runChecks(o.af, `${p}.af`, AF);
  const area = runChecks(o.area, `${p}.area`, AREA);
  const kdfType = runChecks(o.kdf, `${p}.kdf`, [['type', 'string', true]]).type as string;
  const kdfObj = o.kdf as JsonObject;
  let kdf: Kdf;
  if (kdfType === 'argon2id' || kdfType === 'argon2i') {
    const k = runChecks(kdfObj, `${p}.kdf`, KDF_ARGON);
    if (Object.keys(kdfObj).length !== 5) throw bad(`${p}.kdf`, 'must have exactly the keys type, time, memory, cpus, salt');
    kdf = { type: kdfType, time: k.time as number, memory: k.memory as number, cpus: k.cpus as number, salt: k.salt as Buffer };
    if (kdf.time < 1) throw bad(`${p}.kdf.time`, 'must be at least 1');
    if (kdf.memory < 8 || kdf.memory > 4194304) throw bad(`${p}.kdf.memory`, 'must be 8 … 4194304 KiB');
    if (kdf.cpus < 1 || kdf.cpus > 16) throw bad(`${p}.kdf.cpus`, 'must be 1 … 16');
  } else if (kdfType === 'pbkdf2') {
    const k = runChecks(kdfObj, `${p}.kdf`, KDF_PBKDF2);
    if (Object.keys(kdfObj).length !== 4) throw bad(`${p}.kdf`, 'must have exactly the keys type, hash, iterations, salt');
    kdf = { type: 'pbkdf2', hash: k.hash as string, iterations: k.iterations as number, salt: k.salt as Buffer };
    if (kdf.iterations < 1) throw bad(`${p}.kdf.iterations`, 'must be at least 1');
  } else {
    throw bad(`${p}.kdf.type`, `'${kdfType}' is not argon2id, argon2i or pbkdf2`);
  }
  const keySize = ks.key_size as number;
  if (keySize <= 0 || keySize > 512) throw bad(`${p}.key_size`, 'must be 1 … 512 bytes');
  if ((af.stripes as number) < 1) throw bad(`${p}.af.stripes`, 'must be positive');
  if ((area.size as number) <= 0) throw bad(`${p}.area.size`, 'must be positive');
  if ((area.key_size as number) <= 0 || (area.key_size as number) > 512) throw bad(`${p}.area.key_size`, 'must be 1 … 512 bytes');
  return {
    id,
    type: ks.type as string,
    keySize,
    priority: (ks.priority as number | undefined) ?? 1,
    afStripes: af.stripes as number,
    afHash: af.hash as string,
    areaOffset: area.offset as number,
    areaSize: area.size as number,
    areaEncryption: area.encryption as string,
    areaKeySize: area.key_size as number,
    kdf,
  };
}

/** Parses and validates the JSON text of a header whose binary hdr_size is `hdrSize`. */
export function parseMetadata(text: string, hdrSize: number): Metadata {
  let raw: Json;
  try {
    raw = JSON.parse(text) as Json;
  } catch (e) {
    throw new NbdcryptError('EBADHDR', `LUKS2 metadata: the JSON area does not parse (${(e as Error).message}); the header is damaged`);
  }
  runChecks(raw, '(top level)', TOP);
  const top = raw as JsonObject;
  const cfg = runChecks(top.config, 'config', CONFIG);
  const jsonSize = cfg.json_size as number;
  const keyslotsSize = cfg.keyslots_size as number;
  if (jsonSize !== hdrSize - 4096) throw bad('config.json_size', `${jsonSize} does not match the binary header (hdr_size ${hdrSize} − 4096)`);
  if (keyslotsSize % 4096 !== 0 || keyslotsSize > MAX_KEYSLOTS_SIZE) throw bad('config.keyslots_size', 'must be a multiple of 4096 and at most 128 MiB');
  let requirements: string[] = [];
  if (cfg.requirements !== undefined) {
    const r = runChecks(cfg.requirements as JsonObject, 'config.requirements', [['mandatory', 'strings', false]]);
    requirements = (r.mandatory as string[] | undefined) ?? [];
  }

  const keyslots = entries(top.keyslots as JsonObject, 'keyslots', MAX_KEYSLOTS).map(([id, o]) => parseKeyslot(id, o));
  const segments = entries(top.segments as JsonObject, 'segments', MAX_SEGMENTS).map(([id, o]): Segment => {
    const s = runChecks(o, `segments.${id}`, SEGMENT);
    const seg: Segment = {
      id,
      type: s.type as string,
      offset: s.offset as number,
      size: s.size as number | 'dynamic',
      ivTweak: s.iv_tweak as number,
      encryption: s.encryption as string,
      sectorSize: s.sector_size as number,
      flags: (s.flags as string[] | undefined) ?? [],
    };
    if (seg.offset % 512 !== 0) throw bad(`segments.${id}.offset`, 'must be a multiple of 512');
    if (![512, 1024, 2048, 4096].includes(seg.sectorSize)) throw bad(`segments.${id}.sector_size`, 'must be 512, 1024, 2048 or 4096');
    if (seg.size !== 'dynamic' && seg.size % seg.sectorSize !== 0) throw bad(`segments.${id}.size`, 'must be a multiple of sector_size');
    return seg;
  });
  const digests = entries(top.digests as JsonObject, 'digests', MAX_DIGESTS).map(([id, o]): Digest => {
    const d = runChecks(o, `digests.${id}`, DIGEST);
    return {
      id,
      type: d.type as string,
      keyslots: d.keyslots as number[],
      segments: d.segments as number[],
      hash: d.hash as string,
      iterations: d.iterations as number,
      salt: d.salt as Buffer,
      digest: d.digest as Buffer,
    };
  });
  for (const [id, o] of entries(top.tokens as JsonObject, 'tokens', MAX_TOKENS)) {
    const t = runChecks(o, `tokens.${id}`, TOKEN);
    for (const k of t.keyslots as number[]) {
      if (!keyslots.some((s) => s.id === k)) throw bad(`tokens.${id}.keyslots`, `refers to keyslot ${k}, which does not exist`);
    }
  }

  // Cross-object checks (cryptsetup: hdr_validate_digests, validate_intervals, segments).
  for (const d of digests) {
    for (const k of d.keyslots) if (!keyslots.some((s) => s.id === k)) throw bad(`digests.${d.id}.keyslots`, `refers to keyslot ${k}, which does not exist`);
    for (const k of d.segments) if (!segments.some((s) => s.id === k)) throw bad(`digests.${d.id}.segments`, `refers to segment ${k}, which does not exist`);
  }
  for (const s of segments) {
    if (s.type === 'crypt' && !digests.some((d) => d.segments.includes(s.id))) throw bad(`segments.${s.id}`, 'is not referenced by any digest');
    if (s.size === 'dynamic' && s.id !== Math.max(...segments.map((x) => x.id))) throw bad(`segments.${s.id}.size`, 'is "dynamic" but the segment is not the last one');
    if (s.offset !== 0 && s.offset < 2 * hdrSize + keyslotsSize) throw bad(`segments.${s.id}.offset`, `${s.offset} overlaps the metadata and keyslots area (ends at ${2 * hdrSize + keyslotsSize})`);
  }
  const areas = keyslots.map((k) => [k.areaOffset, k.areaOffset + k.areaSize, k.id] as const).sort((a, b) => a[0] - b[0]);
  for (let i = 0; i < areas.length; i++) {
    const [start, end, id] = areas[i]!;
    if (start < 2 * hdrSize || end > 2 * hdrSize + keyslotsSize) throw bad(`keyslots.${id}.area`, `[${start}, ${end}) lies outside the keyslots area [${2 * hdrSize}, ${2 * hdrSize + keyslotsSize})`);
    const next = areas[i + 1];
    if (next && next[0] < end) throw bad(`keyslots.${next[2]}.area`, `overlaps the area of keyslot ${id}`);
  }
  const cfgFlags = (cfg.flags as string[] | undefined) ?? [];
  return { raw: top, keyslots, segments, digests, jsonSize, keyslotsSize, flags: cfgFlags, requirements };
}

/** Compact JSON as cryptsetup (json-c, PLAIN | NOSLASHESCAPE) writes it. */
export function serializeMetadata(raw: JsonObject): string {
  return JSON.stringify(raw);
}

export function keyslotJson(p: { keySize: number; areaOffset: number; areaSize: number; kdf: Kdf; priority?: number }): JsonObject {
  const kdf: JsonObject =
    p.kdf.type === 'pbkdf2'
      ? { type: 'pbkdf2', hash: p.kdf.hash, iterations: p.kdf.iterations, salt: p.kdf.salt.toString('base64') }
      : { type: p.kdf.type, time: p.kdf.time, memory: p.kdf.memory, cpus: p.kdf.cpus, salt: p.kdf.salt.toString('base64') };
  const o: JsonObject = {
    type: 'luks2',
    key_size: p.keySize,
    af: { type: 'luks1', stripes: 4000, hash: 'sha256' },
    area: { type: 'raw', offset: String(p.areaOffset), size: String(p.areaSize), encryption: 'aes-xts-plain64', key_size: p.keySize },
    kdf,
  };
  if (p.priority !== undefined && p.priority !== 1) o.priority = p.priority;
  return o;
}

export function segmentJson(p: { offset: number; sectorSize: number }): JsonObject {
  return { type: 'crypt', offset: String(p.offset), size: 'dynamic', iv_tweak: '0', encryption: 'aes-xts-plain64', sector_size: p.sectorSize };
}

export function digestJson(p: { keyslots: number[]; segments: number[]; iterations: number; salt: Buffer; digest: Buffer }): JsonObject {
  return {
    type: 'pbkdf2',
    keyslots: p.keyslots.map(String),
    segments: p.segments.map(String),
    hash: 'sha256',
    iterations: p.iterations,
    salt: p.salt.toString('base64'),
    digest: p.digest.toString('base64'),
  };
}
