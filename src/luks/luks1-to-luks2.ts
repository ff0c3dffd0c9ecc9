/**
 * In-place conversion of a LUKS1 header to LUKS2, as `cryptsetup convert --type luks2` does
 * it: the volume key, keyslot salts, iterations and key material and the data area stay as
 * they are; the keyslot areas move up by 28672 bytes (from 4096 to behind the two 16 KiB
 * LUKS2 metadata copies), then both LUKS2 copies are written. The caller keeps a header
 * backup first: between the move and the header write the device holds neither a LUKS1 nor a
 * LUKS2 header that opens. Refused: a detached header, keyslot areas not at cryptsetup's
 * aligned layout, keyslots that would not fit before the payload.
 * Spec: docs/formats.md (LUKS conversion).
 */
import { checkWritable, type BlockDevice } from '../block/block-device.js';
import { NbdcryptError } from '../errors.js';
import { afSectors, headerSectors, luks1CipherSpec, LUKS1_ALIGN_KEYSLOTS, type Luks1Header } from './luks1-header.js';
import { loadLuks1Header } from './luks1-volume.js';
import type { JsonObject } from './luks2-json-fields.js';
import { parseMetadata } from './luks2-metadata.js';
import { serializeMetadata } from './luks2-metadata-json.js';
import { commitHeader } from './luks2-volume-state.js';

const HDR_SIZE = 16384;
const SHIFT = 2 * HDR_SIZE - LUKS1_ALIGN_KEYSLOTS;

function refuse(why: string): NbdcryptError {
  return new NbdcryptError('ENOTSUP', `cannot convert this LUKS1 volume to LUKS2: ${why}; nothing was changed`);
}

/** The LUKS2 JSON metadata cryptsetup writes for `h` (same key order). */
export function luks2MetadataFor(h: Luks1Header): JsonObject {
  const spec = luks1CipherSpec(h);
  const areaSize = Math.ceil((afSectors(h.keyBytes) * 512) / 4096) * 4096;
  const keyslots: JsonObject = {};
  for (const k of h.keyslots.filter((s) => s.active)) {
    keyslots[String(k.id)] = {
      type: 'luks2',
      key_size: h.keyBytes,
      kdf: { type: 'pbkdf2', hash: h.hashSpec, iterations: k.iterations, salt: k.salt.toString('base64') },
      af: { type: 'luks1', hash: h.hashSpec, stripes: k.stripes },
      area: { type: 'raw', encryption: spec.name, key_size: h.keyBytes, offset: String(k.keyMaterialOffset * 512 + SHIFT), size: String(areaSize) },
    };
  }
  return {
    keyslots,
    tokens: {},
    segments: { '0': { type: 'crypt', offset: String(h.payloadOffset * 512), iv_tweak: '0', size: 'dynamic', encryption: spec.name, sector_size: 512 } },
    digests: {
      '0': {
        type: 'pbkdf2',
        keyslots: Object.keys(keyslots),
        segments: ['0'],
        hash: h.hashSpec,
        salt: h.mkDigestSalt.toString('base64'),
        digest: h.mkDigest.toString('base64'),
        iterations: h.mkDigestIterations,
      },
    },
    config: { json_size: String(HDR_SIZE - 4096), keyslots_size: String(h.payloadOffset * 512 - 2 * HDR_SIZE) },
  };
}

/** Converts in place; the caller saved a header backup first. Returns the LUKS2 UUID (unchanged). */
export async function convertLuks1ToLuks2(dev: BlockDevice): Promise<string> {
  checkWritable(dev, 'convert');
  const h = await loadLuks1Header(dev);
  if (h.payloadOffset === 0) throw refuse('it is a detached header (payload offset 0)');
  const first = Math.min(...h.keyslots.map((k) => k.keyMaterialOffset));
  if (first * 512 !== LUKS1_ALIGN_KEYSLOTS) throw refuse(`its keyslot areas start at sector ${first}, not at 4096 bytes (a pre-1.0 cryptsetup layout)`);
  const end = headerSectors(h) * 512;
  const areaSize = Math.ceil((afSectors(h.keyBytes) * 512) / 4096) * 4096;
  const last = Math.max(...h.keyslots.map((k) => k.keyMaterialOffset)) * 512 + SHIFT + areaSize;
  if (last > h.payloadOffset * 512) throw refuse(`its keyslots would end at byte ${last} behind the LUKS2 metadata, past the payload at ${h.payloadOffset * 512}`);
  if ((h.payloadOffset * 512) % 4096 !== 0) throw refuse(`its payload offset ${h.payloadOffset} is not a multiple of 4096 bytes, which LUKS2's keyslots area needs`);
  const json = serializeMetadata(luks2MetadataFor(h));
  const meta = parseMetadata(json, HDR_SIZE);
  // Move the key material (overlapping ranges: read all, then write once), then the header.
  const material = await dev.read(LUKS1_ALIGN_KEYSLOTS, end - LUKS1_ALIGN_KEYSLOTS);
  await dev.write(LUKS1_ALIGN_KEYSLOTS + SHIFT, material);
  material.fill(0);
  await dev.flush();
  // seqid 1 + 1: cryptsetup's converted headers start at epoch 2.
  await commitHeader(dev, { meta, fields: { hdrSize: HDR_SIZE, seqid: 1n, label: '', checksumAlg: 'sha256', uuid: h.uuid, subsystem: '' } });
  return h.uuid;
}
