/**
 * Writing LUKS2 JSON metadata: builders that produce keyslot, segment and digest objects in
 * the key order cryptsetup writes, and the compact writer (json-c PLAIN|NOSLASHESCAPE is
 * JSON.stringify for this content).
 * Spec: docs/formats.md (LUKS2 JSON metadata).
 */
import { DEFAULT_CIPHER } from '../crypt/cipher-spec.js';
import type { JsonObject } from './luks2-json-fields.js';
import type { Kdf } from './luks2-metadata.js';

/** Compact JSON as cryptsetup (json-c, PLAIN | NOSLASHESCAPE) writes it. */
export function serializeMetadata(raw: JsonObject): string {
  return JSON.stringify(raw);
}

/** A "luks2" keyslot; its area is encrypted with `encryption` (default aes-xts-plain64) and a key of `keySize` bytes, as cryptsetup does with the data cipher. */
export function keyslotJson(p: { keySize: number; areaOffset: number; areaSize: number; kdf: Kdf; encryption?: string; priority?: number }): JsonObject {
  const kdf: JsonObject =
    p.kdf.type === 'pbkdf2'
      ? { type: 'pbkdf2', hash: p.kdf.hash, iterations: p.kdf.iterations, salt: p.kdf.salt.toString('base64') }
      : { type: p.kdf.type, time: p.kdf.time, memory: p.kdf.memory, cpus: p.kdf.cpus, salt: p.kdf.salt.toString('base64') };
  const o: JsonObject = {
    type: 'luks2',
    key_size: p.keySize,
    af: { type: 'luks1', stripes: 4000, hash: 'sha256' },
    area: { type: 'raw', offset: String(p.areaOffset), size: String(p.areaSize), encryption: p.encryption ?? DEFAULT_CIPHER, key_size: p.keySize },
    kdf,
  };
  if (p.priority !== undefined && p.priority !== 1) o.priority = p.priority;
  return o;
}

export function segmentJson(p: { offset: number; sectorSize: number; encryption?: string }): JsonObject {
  return { type: 'crypt', offset: String(p.offset), size: 'dynamic', iv_tweak: '0', encryption: p.encryption ?? DEFAULT_CIPHER, sector_size: p.sectorSize };
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
