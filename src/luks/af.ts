/**
 * Anti-forensic information splitter (Clemens Fruhwirth's AF, as in LUKS1 and LUKS2): a key of
 * B bytes is stored as S stripes of B bytes, so destroying any part of the area destroys the
 * key. Diffusion H hashes the buffer in digest-sized chunks, chunk j ← hash(BE32(j) ‖ chunk_j).
 * The hash is any of hash-functions.ts (LUKS1 uses the header's hash-spec, LUKS2 the keyslot's).
 * Spec: docs/formats.md (LUKS2 keyslots, LUKS1 keyslots).
 */
import { randomFillSync } from 'node:crypto';
import { hashDigest, hashLength } from './hash-functions.js';

/** cryptsetup always uses LUKS_STRIPES, whatever the JSON says. */
export const AF_STRIPES = 4000;

function diffuse(buf: Buffer, hash: string): void {
  const digestLen = hashLength(hash);
  const iv = Buffer.alloc(4);
  for (let j = 0, off = 0; off < buf.length; j++, off += digestLen) {
    const len = Math.min(digestLen, buf.length - off);
    iv.writeUInt32BE(j, 0);
    const d = hashDigest(hash, iv, buf.subarray(off, off + len));
    d.copy(buf, off, 0, len);
    d.fill(0);
  }
}

function xorInto(dst: Buffer, a: Buffer, b: Buffer): void {
  for (let i = 0; i < dst.length; i++) dst[i] = a[i]! ^ b[i]!;
}

/** Bytes of split material for a key: blocksize · stripes. */
export function afSplitSize(keySize: number, stripes = AF_STRIPES): number {
  return keySize * stripes;
}

/** Splits `key` into `stripes` stripes; the result must be wiped by the caller. */
export function afSplit(key: Buffer, hash = 'sha256', stripes = AF_STRIPES): Buffer {
  const b = key.length;
  const out = Buffer.alloc(b * stripes);
  randomFillSync(out, 0, b * (stripes - 1));
  const d = Buffer.alloc(b);
  for (let i = 0; i < stripes - 1; i++) {
    xorInto(d, d, out.subarray(i * b, (i + 1) * b));
    diffuse(d, hash);
  }
  xorInto(out.subarray((stripes - 1) * b), d, key);
  d.fill(0);
  return out;
}

/** Merges split material back into a `keySize`-byte key; the result must be wiped by the caller. */
export function afMerge(material: Buffer, keySize: number, hash = 'sha256', stripes = AF_STRIPES): Buffer {
  if (material.length < keySize * stripes) throw new RangeError(`AF material has ${material.length} bytes, need ${keySize * stripes}`);
  const d = Buffer.alloc(keySize);
  for (let i = 0; i < stripes - 1; i++) {
    xorInto(d, d, material.subarray(i * keySize, (i + 1) * keySize));
    diffuse(d, hash);
  }
  const key = Buffer.alloc(keySize);
  xorInto(key, d, material.subarray((stripes - 1) * keySize, stripes * keySize));
  d.fill(0);
  return key;
}
