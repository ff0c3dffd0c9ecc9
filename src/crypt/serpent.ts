/**
 * Serpent in portable TypeScript, the fallback for the native addon's serpent.c: the bitslice
 * form (four 32-bit words; each round mixes the round key, applies one S-box across the words
 * and the linear transformation), so no initial or final permutation. Byte order as Linux's
 * serpent_generic and dm-crypt (little-endian words).
 * S-box tables (serpent-sboxes.ts implements them):
 *   S0 3 8 15 1 10 6 5 11 14 13 4 2 7 0 9 12     S4 1 15 8 3 12 0 11 6 2 5 4 10 9 14 7 13
 *   S1 15 12 2 7 9 0 5 10 1 11 14 8 6 13 3 4     S5 15 5 2 11 4 10 9 12 0 3 14 8 13 6 7 1
 *   S2 8 6 7 9 3 12 10 15 13 1 14 4 0 11 5 2     S6 7 2 12 5 8 4 6 11 14 9 1 15 13 3 10 0
 *   S3 0 15 11 8 12 9 6 3 13 1 2 4 10 7 5 14     S7 1 13 15 0 14 8 2 11 7 4 12 10 9 3 5 6
 * Spec: Anderson, Biham, Knudsen, "Serpent: A Proposal for the Advanced Encryption Standard"
 * (1998), sections 2.1-2.3.
 */
import { readLE32, writeLE32, type BlockCipher } from './block-cipher.js';
import { I, S } from './serpent-sboxes.js';

export const SERPENT_SBOX_TABLES: readonly (readonly number[])[] = [
  [3, 8, 15, 1, 10, 6, 5, 11, 14, 13, 4, 2, 7, 0, 9, 12],
  [15, 12, 2, 7, 9, 0, 5, 10, 1, 11, 14, 8, 6, 13, 3, 4],
  [8, 6, 7, 9, 3, 12, 10, 15, 13, 1, 14, 4, 0, 11, 5, 2],
  [0, 15, 11, 8, 12, 9, 6, 3, 13, 1, 2, 4, 10, 7, 5, 14],
  [1, 15, 8, 3, 12, 0, 11, 6, 2, 5, 4, 10, 9, 14, 7, 13],
  [15, 5, 2, 11, 4, 10, 9, 12, 0, 3, 14, 8, 13, 6, 7, 1],
  [7, 2, 12, 5, 8, 4, 6, 11, 14, 9, 1, 15, 13, 3, 10, 0],
  [1, 13, 15, 0, 14, 8, 2, 11, 7, 4, 12, 10, 9, 3, 5, 6],
];

const PHI = 0x9e3779b9;
const rol = (x: number, n: number): number => (x << n) | (x >>> (32 - n));
const ror = (x: number, n: number): number => (x >>> n) | (x << (32 - n));

/** The linear transformation (spec section 2.2), in place. */
function lt(x: Int32Array): void {
  let x0 = rol(x[0]!, 13);
  let x2 = rol(x[2]!, 3);
  let x1 = x[1]! ^ x0 ^ x2;
  let x3 = x[3]! ^ x2 ^ (x0 << 3);
  x1 = rol(x1, 1);
  x3 = rol(x3, 7);
  x0 ^= x1 ^ x3;
  x2 ^= x3 ^ (x1 << 7);
  x[0] = rol(x0, 5);
  x[1] = x1;
  x[2] = rol(x2, 22);
  x[3] = x3;
}

function ilt(x: Int32Array): void {
  let x2 = ror(x[2]!, 22);
  let x0 = ror(x[0]!, 5);
  let x1 = x[1]!;
  let x3 = x[3]!;
  x2 ^= x3 ^ (x1 << 7);
  x0 ^= x1 ^ x3;
  x3 = ror(x3, 7);
  x1 = ror(x1, 1);
  x3 ^= x2 ^ (x0 << 3);
  x1 ^= x0 ^ x2;
  x[0] = ror(x0, 13);
  x[1] = x1;
  x[2] = ror(x2, 3);
  x[3] = x3;
}

/** A keyed Serpent; key is 16, 24 or 32 bytes. */
export function serpent(key: Uint8Array): BlockCipher {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) throw new RangeError(`serpent key must be 16, 24 or 32 bytes, got ${key.length}`);
  // A short key is padded to 256 bits with one 1 bit after its last bit, then zeroes.
  const full = new Uint8Array(32);
  full.set(key);
  if (key.length < 32) full[key.length] = 1;
  const w = new Int32Array(140);
  for (let i = 0; i < 8; i++) w[i] = readLE32(full, 4 * i);
  for (let i = 8; i < 140; i++) w[i] = rol(w[i - 8]! ^ w[i - 5]! ^ w[i - 3]! ^ w[i - 1]! ^ PHI ^ (i - 8), 11);
  // Round key i goes through S-box (3 - i) mod 8.
  const k = new Int32Array(33 * 4);
  for (let i = 0; i < 33; i++) {
    const x = k.subarray(4 * i, 4 * i + 4);
    x.set(w.subarray(8 + 4 * i, 12 + 4 * i));
    S[(35 - i) % 8]!(x);
  }
  w.fill(0);
  full.fill(0);

  const x = new Int32Array(4);
  const kx = (r: number): void => {
    x[0] ^= k[4 * r]!;
    x[1] ^= k[4 * r + 1]!;
    x[2] ^= k[4 * r + 2]!;
    x[3] ^= k[4 * r + 3]!;
  };
  const load = (buf: Uint8Array, off: number): void => {
    for (let i = 0; i < 4; i++) x[i] = readLE32(buf, off + 4 * i);
  };
  const store = (buf: Uint8Array, off: number): void => {
    for (let i = 0; i < 4; i++) writeLE32(buf, off + 4 * i, x[i]!);
  };
  return {
    encryptBlock(buf, off) {
      load(buf, off);
      for (let r = 0; r < 31; r++) {
        kx(r);
        S[r % 8]!(x);
        lt(x);
      }
      kx(31);
      S[7]!(x);
      kx(32);
      store(buf, off);
    },
    decryptBlock(buf, off) {
      load(buf, off);
      kx(32);
      I[7]!(x);
      kx(31);
      for (let r = 30; r >= 0; r--) {
        ilt(x);
        I[r % 8]!(x);
        kx(r);
      }
      store(buf, off);
    },
    wipe() {
      k.fill(0);
      x.fill(0);
    },
  };
}
