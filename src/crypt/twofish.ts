/**
 * Twofish in portable TypeScript, the fallback for the native addon's twofish.c (same
 * algorithm, same "full keying": the key-dependent S-boxes and the MDS matrix are folded into
 * four 256-word tables at key setup, so g is four lookups). Little-endian words as in the
 * specification. Spec: Schneier, Kelsey, Whiting, Wagner, Hall, Ferguson, "Twofish: A 128-Bit
 * Block Cipher" (1998), section 4.
 */
import { readLE32, writeLE32, type BlockCipher } from './block-cipher.js';

/** q0 and q1 from their nibble tables t0..t3 (spec section 4.3.5). */
const QT: readonly (readonly number[])[][] = [
  [
    [0x8, 0x1, 0x7, 0xd, 0x6, 0xf, 0x3, 0x2, 0x0, 0xb, 0x5, 0x9, 0xe, 0xc, 0xa, 0x4],
    [0xe, 0xc, 0xb, 0x8, 0x1, 0x2, 0x3, 0x5, 0xf, 0x4, 0xa, 0x6, 0x7, 0x0, 0x9, 0xd],
    [0xb, 0xa, 0x5, 0xe, 0x6, 0xd, 0x9, 0x0, 0xc, 0x8, 0xf, 0x3, 0x2, 0x4, 0x7, 0x1],
    [0xd, 0x7, 0xf, 0x4, 0x1, 0x2, 0x6, 0xe, 0x9, 0xb, 0x3, 0x0, 0x8, 0x5, 0xc, 0xa],
  ],
  [
    [0x2, 0x8, 0xb, 0xd, 0xf, 0x7, 0x6, 0xe, 0x3, 0x1, 0x9, 0x4, 0x0, 0xa, 0xc, 0x5],
    [0x1, 0xe, 0x2, 0xb, 0x4, 0xc, 0x3, 0x7, 0x6, 0xd, 0xa, 0x5, 0xf, 0x9, 0x0, 0x8],
    [0x4, 0xc, 0x7, 0x5, 0x1, 0x6, 0x9, 0xa, 0x0, 0xe, 0xd, 0x8, 0x2, 0xb, 0x3, 0xf],
    [0xb, 0x9, 0x5, 0x1, 0xc, 0x3, 0xd, 0xe, 0x6, 0x4, 0x7, 0xf, 0x2, 0x0, 0x8, 0xa],
  ],
];

const ror4 = (x: number): number => ((x >>> 1) | (x << 3)) & 15;

function qEval(t: readonly (readonly number[])[], x: number): number {
  const a = x >>> 4;
  const b = x & 15;
  const a1 = a ^ b;
  const b1 = (a ^ ror4(b) ^ ((8 * a) & 15)) & 15;
  const a2 = t[0]![a1]!;
  const b2 = t[1]![b1]!;
  const a3 = a2 ^ b2;
  const b3 = (a2 ^ ror4(b2) ^ ((8 * a2) & 15)) & 15;
  return (t[3]![b3]! << 4) | t[2]![a3]!;
}

const Q: readonly Uint8Array[] = [0, 1].map((w) => Uint8Array.from({ length: 256 }, (_, x) => qEval(QT[w]!, x)));

/** Multiplication in GF(2^8) modulo `poly`. */
function gfMul(a: number, b: number, poly: number): number {
  let r = 0;
  for (let x = a; b; b >>>= 1, x <<= 1) {
    if (x & 0x100) x ^= poly;
    if (b & 1) r ^= x;
  }
  return r & 0xff;
}

const MDS_POLY = 0x169; // x^8 + x^6 + x^5 + x^3 + 1
const RS_POLY = 0x14d; // x^8 + x^6 + x^3 + x^2 + 1
const MDS = [
  [0x01, 0xef, 0x5b, 0x5b],
  [0x5b, 0xef, 0xef, 0x01],
  [0xef, 0x5b, 0x01, 0xef],
  [0xef, 0x01, 0xef, 0x5b],
];
const RS = [
  [0x01, 0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e],
  [0xa4, 0x56, 0x82, 0xf3, 0x1e, 0xc6, 0x68, 0xe5],
  [0x02, 0xa1, 0xfc, 0xc1, 0x47, 0xae, 0x3d, 0x19],
  [0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e, 0x03],
];
/** The q permutation (0 or 1) of column j at each stage of h, from the input side. */
const Q4 = [1, 0, 0, 1];
const Q3 = [1, 1, 0, 0];
const QA = [0, 1, 0, 1];
const QB = [0, 0, 1, 1];
const QC = [1, 0, 1, 0];

/** Byte j of h's S-box stage for input byte x and key words l (l[k-1] innermost). */
function hByte(j: number, x: number, l: Uint32Array, k: number): number {
  const sh = 8 * j;
  if (k === 4) x = Q[Q4[j]!]![x]! ^ ((l[3]! >>> sh) & 0xff);
  if (k >= 3) x = Q[Q3[j]!]![x]! ^ ((l[2]! >>> sh) & 0xff);
  x = Q[QA[j]!]![x]! ^ ((l[1]! >>> sh) & 0xff);
  x = Q[QB[j]!]![x]! ^ ((l[0]! >>> sh) & 0xff);
  return Q[QC[j]!]![x]!;
}

function mdsColumn(j: number, y: number): number {
  let z = 0;
  for (let i = 0; i < 4; i++) z |= gfMul(MDS[i]![j]!, y, MDS_POLY) << (8 * i);
  return z >>> 0;
}

function hWord(x: number, l: Uint32Array, k: number): number {
  let z = 0;
  for (let j = 0; j < 4; j++) z ^= mdsColumn(j, hByte(j, (x >>> (8 * j)) & 0xff, l, k));
  return z >>> 0;
}

const rol = (x: number, n: number): number => ((x << n) | (x >>> (32 - n))) >>> 0;
const ror = (x: number, n: number): number => ((x >>> n) | (x << (32 - n))) >>> 0;

/** A keyed Twofish; key is 16, 24 or 32 bytes. */
export function twofish(key: Uint8Array): BlockCipher {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) throw new RangeError(`twofish key must be 16, 24 or 32 bytes, got ${key.length}`);
  const k = key.length / 8;
  const me = new Uint32Array(k);
  const mo = new Uint32Array(k);
  const sv = new Uint32Array(k);
  for (let i = 0; i < k; i++) {
    me[i] = readLE32(key, 8 * i);
    mo[i] = readLE32(key, 8 * i + 4);
    let s = 0;
    for (let r = 0; r < 4; r++) {
      let acc = 0;
      for (let c = 0; c < 8; c++) acc ^= gfMul(RS[r]![c]!, key[8 * i + c]!, RS_POLY);
      s |= acc << (8 * r);
    }
    sv[k - 1 - i] = s; // the S-box key list is (S_k-1, ..., S_0)
  }
  const K = new Uint32Array(40);
  const rho = 0x01010101;
  for (let i = 0; i < 20; i++) {
    const a = hWord(Math.imul(2 * i, rho) >>> 0, me, k);
    const b = rol(hWord(Math.imul(2 * i + 1, rho) >>> 0, mo, k), 8);
    K[2 * i] = a + b;
    K[2 * i + 1] = rol((a + 2 * b) >>> 0, 9);
  }
  const s0 = new Uint32Array(256);
  const s1 = new Uint32Array(256);
  const s2 = new Uint32Array(256);
  const s3 = new Uint32Array(256);
  const S = [s0, s1, s2, s3];
  for (let j = 0; j < 4; j++) for (let x = 0; x < 256; x++) S[j]![x] = mdsColumn(j, hByte(j, x, sv, k));
  me.fill(0);
  mo.fill(0);
  sv.fill(0);

  const g0 = (x: number): number => s0[x & 0xff]! ^ s1[(x >>> 8) & 0xff]! ^ s2[(x >>> 16) & 0xff]! ^ s3[x >>> 24]!;
  const g1 = (x: number): number => s0[x >>> 24]! ^ s1[x & 0xff]! ^ s2[(x >>> 8) & 0xff]! ^ s3[(x >>> 16) & 0xff]!; // g(ROL(x, 8))

  return {
    encryptBlock(buf, off) {
      let a = (readLE32(buf, off) ^ K[0]!) >>> 0;
      let b = (readLE32(buf, off + 4) ^ K[1]!) >>> 0;
      let c = (readLE32(buf, off + 8) ^ K[2]!) >>> 0;
      let d = (readLE32(buf, off + 12) ^ K[3]!) >>> 0;
      for (let r = 0; r < 8; r++) {
        let t0 = g0(a);
        let t1 = g1(b);
        c = ror((c ^ (t0 + t1 + K[8 + 4 * r]!)) >>> 0, 1);
        d = (rol(d, 1) ^ (t0 + 2 * t1 + K[9 + 4 * r]!)) >>> 0;
        t0 = g0(c);
        t1 = g1(d);
        a = ror((a ^ (t0 + t1 + K[10 + 4 * r]!)) >>> 0, 1);
        b = (rol(b, 1) ^ (t0 + 2 * t1 + K[11 + 4 * r]!)) >>> 0;
      }
      // The last round's swap is undone by writing c, d, a, b.
      writeLE32(buf, off, c ^ K[4]!);
      writeLE32(buf, off + 4, d ^ K[5]!);
      writeLE32(buf, off + 8, a ^ K[6]!);
      writeLE32(buf, off + 12, b ^ K[7]!);
    },
    decryptBlock(buf, off) {
      // Named as loaded: a, b, c, d here are the encryption's c, d, a, b.
      let a = (readLE32(buf, off) ^ K[4]!) >>> 0;
      let b = (readLE32(buf, off + 4) ^ K[5]!) >>> 0;
      let c = (readLE32(buf, off + 8) ^ K[6]!) >>> 0;
      let d = (readLE32(buf, off + 12) ^ K[7]!) >>> 0;
      for (let r = 7; r >= 0; r--) {
        let t0 = g0(a);
        let t1 = g1(b);
        c = (rol(c, 1) ^ (t0 + t1 + K[10 + 4 * r]!)) >>> 0;
        d = ror((d ^ (t0 + 2 * t1 + K[11 + 4 * r]!)) >>> 0, 1);
        t0 = g0(c);
        t1 = g1(d);
        a = (rol(a, 1) ^ (t0 + t1 + K[8 + 4 * r]!)) >>> 0;
        b = ror((b ^ (t0 + 2 * t1 + K[9 + 4 * r]!)) >>> 0, 1);
      }
      writeLE32(buf, off, c ^ K[0]!);
      writeLE32(buf, off + 4, d ^ K[1]!);
      writeLE32(buf, off + 8, a ^ K[2]!);
      writeLE32(buf, off + 12, b ^ K[3]!);
    },
    wipe() {
      K.fill(0);
      for (const t of S) t.fill(0);
    },
  };
}
