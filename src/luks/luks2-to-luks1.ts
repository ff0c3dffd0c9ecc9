/**
 * In-place conversion of a LUKS2 header to LUKS1, as `cryptsetup convert --type luks1` does
 * it, for the LUKS2 volumes LUKS1 can express: 16 KiB metadata copies, one crypt segment with
 * 512-byte sectors and iv_tweak 0, at most 8 keyslots numbered 0 … 7, all pbkdf2 with the
 * digest's hash as KDF and AF hash and the segment's cipher and key size for their area, 4000
 * stripes, areas where a LUKS1 layout puts them once moved down by 28672 bytes, no tokens, a
 * pbkdf2 digest with a 32-byte salt (its first 20 bytes become mk-digest, which is what
 * PBKDF2 of 20 bytes gives). Anything else (argon2 keyslots from nbdcrypt or cryptsetup's
 * defaults, 4096-byte sectors, tokens, more keyslots) is refused naming it. The caller keeps a
 * header backup first. Spec: docs/formats.md (LUKS conversion).
 */
import { checkWritable, type BlockDevice } from '../block/block-device.js';
import { NbdcryptError } from '../errors.js';
import { afSectors, keyslotLayout, LUKS1_ALIGN_KEYSLOTS, LUKS1_STRIPES, type Luks1Header, type Luks1Keyslot } from './luks1-header.js';
import { writeLuks1Header } from './luks1-volume.js';
import type { JsonObject } from './luks2-json-fields.js';
import { loadHeader } from './luks2-volume-state.js';

const HDR_SIZE = 16384;
const SHIFT = 2 * HDR_SIZE - LUKS1_ALIGN_KEYSLOTS;

function refuse(why: string): NbdcryptError {
  return new NbdcryptError('ENOTSUP', `cannot convert this LUKS2 volume to LUKS1: ${why}; nothing was changed`);
}

/** Converts in place; the caller saved a header backup first. Returns the UUID (unchanged). */
export async function convertLuks2ToLuks1(dev: BlockDevice): Promise<string> {
  checkWritable(dev, 'convert');
  const l = await loadHeader(dev);
  const { meta, fields } = l;
  if (fields.hdrSize !== HDR_SIZE) throw refuse(`its metadata copies are ${fields.hdrSize} bytes, LUKS1 conversion needs 16384`);
  if (Object.keys(meta.raw.tokens as JsonObject).length > 0) throw refuse('it has tokens, which LUKS1 cannot hold');
  if (meta.requirements.length > 0 || meta.segments.length !== 1 || meta.segments[0]!.type !== 'crypt') throw refuse('it has not exactly one plain crypt segment (reencryption in progress?)');
  const seg = meta.segments[0]!;
  if (seg.sectorSize !== 512) throw refuse(`its sector size is ${seg.sectorSize}; LUKS1 has 512-byte sectors only`);
  if (seg.ivTweak !== 0 || seg.size !== 'dynamic') throw refuse('its data segment has an IV tweak or a fixed size');
  if (seg.offset % 512 !== 0 || seg.offset / 512 > 0xffffffff || seg.offset === 0) throw refuse(`its data offset ${seg.offset} cannot be a LUKS1 payload offset`);
  if (meta.digests.length !== 1) throw refuse(`it has ${meta.digests.length} digests`);
  const d = meta.digests[0]!;
  if (d.type !== 'pbkdf2' || d.salt.length !== 32 || d.digest.length < 20) throw refuse('its digest is not pbkdf2 with a 32-byte salt');
  if (meta.keyslots.length > 8 || meta.keyslots.some((k) => k.id > 7)) throw refuse('it uses keyslots above 7; LUKS1 has 8');
  const dash = seg.encryption.indexOf('-');
  const keyBytes = meta.keyslots[0]?.keySize ?? 0;
  if (keyBytes === 0) throw refuse('it has no keyslot');
  const layout = keyslotLayout(keyBytes);
  const active = new Map<number, Luks1Keyslot>();
  for (const k of meta.keyslots) {
    const what = `keyslot ${k.id}`;
    if (k.kdf.type !== 'pbkdf2') throw refuse(`${what} uses ${k.kdf.type}; LUKS1 keyslots are pbkdf2 (add a pbkdf2 keyslot and remove this one first)`);
    if (k.kdf.hash !== d.hash || k.afHash !== d.hash) throw refuse(`${what} uses hashes other than the digest's ${d.hash}`);
    if (k.areaEncryption !== seg.encryption || k.areaKeySize !== keyBytes || k.keySize !== keyBytes) throw refuse(`${what} area is not encrypted with the data cipher and key size`);
    if (k.afStripes !== LUKS1_STRIPES || k.kdf.salt.length !== 32) throw refuse(`${what} has ${k.afStripes} stripes or a salt LUKS1 cannot hold`);
    const offset = (k.areaOffset - SHIFT) / 512;
    if (offset !== layout.offsets[k.id]) throw refuse(`${what} area at ${k.areaOffset} is not where LUKS1 keeps keyslot ${k.id}`);
    if (!d.keyslots.includes(k.id)) throw refuse(`${what} is not bound to the volume key digest`);
    active.set(k.id, { id: k.id, active: true, iterations: k.kdf.iterations, salt: k.kdf.salt, keyMaterialOffset: offset, stripes: LUKS1_STRIPES });
  }
  if (layout.end * 512 > seg.offset) throw refuse('the LUKS1 keyslot areas would reach into the data');
  const h: Luks1Header = {
    cipherName: dash < 0 ? seg.encryption : seg.encryption.slice(0, dash),
    cipherMode: dash < 0 ? 'cbc-plain' : seg.encryption.slice(dash + 1),
    hashSpec: d.hash,
    payloadOffset: seg.offset / 512,
    keyBytes,
    mkDigest: Buffer.from(d.digest.subarray(0, 20)),
    mkDigestSalt: d.salt,
    mkDigestIterations: d.iterations,
    uuid: fields.uuid,
    keyslots: layout.offsets.map((keyMaterialOffset, id) => active.get(id) ?? { id, active: false, iterations: 0, salt: Buffer.alloc(32), keyMaterialOffset, stripes: LUKS1_STRIPES }),
  };
  // Move each active keyslot's material down (ascending order: targets are below sources),
  // then wipe what is left of the LUKS2 metadata (all of it when keyslot 0 is unused) and
  // write the LUKS1 header.
  for (const k of [...active.values()].sort((a, b) => a.keyMaterialOffset - b.keyMaterialOffset)) {
    const len = afSectors(keyBytes) * 512;
    const m = await dev.read(k.keyMaterialOffset * 512 + SHIFT, len);
    await dev.write(k.keyMaterialOffset * 512, m);
    m.fill(0);
  }
  await dev.flush();
  await dev.write(0, Buffer.alloc(active.has(0) ? LUKS1_ALIGN_KEYSLOTS : 2 * HDR_SIZE));
  await writeLuks1Header(dev, h);
  return fields.uuid;
}
