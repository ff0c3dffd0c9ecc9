/**
 * LUKS2 JSON metadata validation: tables of checks per object (keyslot, area, kdf, segment,
 * digest, config, token), then the cross-object rules (digests refer to existing keyslots and
 * segments, keyslot areas lie inside the keyslots area and do not overlap, segments start
 * after the metadata). Produces typed views of keyslots/segments/digests; unknown optional
 * fields stay in `raw` and are written back untouched (luks2-metadata-json.ts).
 * Spec: docs/formats.md (LUKS2 JSON metadata).
 */
import { NbdcryptError } from '../errors.js';
import { bad, isObject, parseId, runChecks, type Check, type Json, type JsonObject } from './luks2-json-fields.js';

export type { Json, JsonObject } from './luks2-json-fields.js';

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

