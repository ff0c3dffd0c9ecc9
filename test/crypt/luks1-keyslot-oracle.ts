/**
 * A minimal LUKS1 reader for tests, written from the LUKS1 on-disk format specification: it
 * unlocks keyslot 0 of an image made by another program (qemu-img) to learn its volume key.
 * PBKDF2(hash, passphrase, slot salt, slot iterations) keys the volume's own cipher spec,
 * which decrypts the slot's AF-split material in 512-byte sectors numbered from 0; the AF
 * merge (diffusion with the header hash) gives the key, and the header's PBKDF2 digest of it
 * must match, so a wrong cipher implementation cannot pass. Only what the tests need: no
 * other slots, no writing. Spec: Clemens Fruhwirth, "LUKS1 On-Disk Format Specification",
 * version 1.2.3, sections 2.4 (AF), 3.1 (header), 4.1 (recover key).
 */
import { createHash, pbkdf2Sync } from 'node:crypto';
import { parseLuks1Cipher, type CipherSpec } from '../../src/crypt/cipher-spec.js';
import { createSectorCipher, type EngineName } from '../../src/crypt/sector-cipher.js';

export interface Luks1Unlocked {
  spec: CipherSpec;
  volumeKey: Buffer;
  /** Byte offset of the encrypted payload. */
  payloadOffset: number;
  hash: string;
}

const cstr = (b: Buffer): string => {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString('latin1');
};

/** The AF diffusion: each digest-sized chunk j becomes H(BE32(j) ‖ chunk), cut to its length. */
function diffuse(hash: string, d: Buffer): Buffer {
  const out = Buffer.alloc(d.length);
  const ds = createHash(hash).digest().length;
  for (let j = 0, at = 0; at < d.length; j++, at += ds) {
    const chunk = d.subarray(at, Math.min(d.length, at + ds));
    const iv = Buffer.alloc(4);
    iv.writeUInt32BE(j);
    createHash(hash).update(iv).update(chunk).digest().copy(out, at, 0, chunk.length);
  }
  return out;
}

export function unlockLuks1(image: Buffer, passphrase: Buffer, engine: EngineName): Luks1Unlocked {
  if (!image.subarray(0, 6).equals(Buffer.from('LUKS\xba\xbe', 'latin1')) || image.readUInt16BE(6) !== 1) throw new Error('not a LUKS1 header');
  const spec = parseLuks1Cipher(cstr(image.subarray(8, 40)), cstr(image.subarray(40, 72)));
  const hash = cstr(image.subarray(72, 104));
  const payloadOffset = image.readUInt32BE(104) * 512;
  const keyBytes = image.readUInt32BE(108);
  const mkDigest = image.subarray(112, 132);
  const mkSalt = image.subarray(132, 164);
  const mkIter = image.readUInt32BE(164);
  const slot = 208; // keyslot 0
  if (image.readUInt32BE(slot) !== 0x00ac71f3) throw new Error('keyslot 0 is not active');
  const iter = image.readUInt32BE(slot + 4);
  const salt = image.subarray(slot + 8, slot + 40);
  const materialOffset = image.readUInt32BE(slot + 40) * 512;
  const stripes = image.readUInt32BE(slot + 44);
  const derived = pbkdf2Sync(passphrase, salt, iter, keyBytes, hash);
  const len = Math.ceil((keyBytes * stripes) / 512) * 512;
  const material = Buffer.from(image.subarray(materialOffset, materialOffset + len));
  const c = createSectorCipher(spec, derived, engine);
  c.decrypt(material, 0, 512);
  c.destroy();
  let d: Buffer = Buffer.alloc(keyBytes);
  for (let i = 0; i < stripes - 1; i++) {
    const s = material.subarray(i * keyBytes, (i + 1) * keyBytes);
    d = diffuse(hash, Buffer.from(d.map((x, k) => x ^ s[k]!)));
  }
  const last = material.subarray((stripes - 1) * keyBytes, stripes * keyBytes);
  const volumeKey = Buffer.from(d.map((x, k) => x ^ last[k]!));
  if (!pbkdf2Sync(volumeKey, mkSalt, mkIter, 20, hash).equals(mkDigest)) throw new Error(`keyslot 0 did not unlock: the volume key digest does not match (${spec.name}, ${engine} engine)`);
  return { spec, volumeKey, payloadOffset, hash };
}
