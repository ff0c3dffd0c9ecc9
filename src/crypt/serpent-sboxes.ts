/**
 * Serpent's S-boxes S0..S7 and inverses I0..I7 in bitslice form for serpent.ts: each function
 * applies one 4-bit S-box to the 32 nibbles across x[0..3] in place (bit j of x[i] is bit i of
 * nibble j). Every output bit is the algebraic normal form of the S-box table (listed in
 * serpent.ts), the same formulas as native/src/serpent-sboxes.h; a test checks each against
 * its table for all 16 inputs. Spec: Anderson, Biham, Knudsen, "Serpent: A Proposal for the
 * Advanced Encryption Standard" (1998).
 */

/** One bitsliced S-box over a 4-word block, in place. */
export type BitslicedSbox = (x: Int32Array) => void;

const sboxes: readonly BitslicedSbox[] = [
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m012 = m12 & x0;
    const m023 = m03 & x2;
    const m123 = m13 & x2;
    x[0] = ~(x0 ^ m01 ^ x2 ^ m02 ^ m12 ^ m012 ^ x3 ^ m023 ^ m123);
    x[1] = ~(x0 ^ m02 ^ m12 ^ m012 ^ m13 ^ m023 ^ m123);
    x[2] = x1 ^ m01 ^ m02 ^ m012 ^ x3 ^ m13 ^ m123;
    x[3] = x0 ^ x1 ^ x2 ^ x3 ^ m03;
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m23 = x3 & x2;
    const m013 = m13 & x0;
    const m023 = m23 & x0;
    const m123 = m23 & x1;
    x[0] = ~(x0 ^ x1 ^ m12 ^ m03 ^ m23 ^ m023 ^ m123);
    x[1] = ~(x0 ^ m01 ^ x2 ^ m02 ^ x3 ^ m13 ^ m013 ^ m023 ^ m123);
    x[2] = ~(x1 ^ m01 ^ x2 ^ x3);
    x[3] = ~(x1 ^ m02 ^ x3 ^ m03 ^ m013 ^ m023 ^ m123);
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m02 = x2 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m23 = x3 & x2;
    const m012 = m12 & x0;
    const m013 = m13 & x0;
    const m023 = m23 & x0;
    x[0] = x1 ^ x2 ^ m02 ^ x3;
    x[1] = x0 ^ x1 ^ x2 ^ m12 ^ m012 ^ m03 ^ m013 ^ m23 ^ m023;
    x[2] = x0 ^ x1 ^ m12 ^ x3 ^ m13 ^ m013 ^ m23 ^ m023;
    x[3] = ~(x0 ^ x1 ^ x2 ^ m012 ^ m13);
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m23 = x3 & x2;
    const m012 = m12 & x0;
    const m013 = m13 & x0;
    const m023 = m23 & x0;
    const m123 = m23 & x1;
    x[0] = x0 ^ x1 ^ m12 ^ x3 ^ m03 ^ m23 ^ m023 ^ m123;
    x[1] = x0 ^ x1 ^ m02 ^ m03 ^ m013 ^ m23 ^ m023;
    x[2] = x0 ^ m01 ^ x2 ^ m012 ^ x3 ^ m13 ^ m013;
    x[3] = x0 ^ x1 ^ m01 ^ x2 ^ m02 ^ m012 ^ x3 ^ m23 ^ m023;
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m23 = x3 & x2;
    const m012 = m12 & x0;
    const m013 = m13 & x0;
    const m023 = m23 & x0;
    const m123 = m23 & x1;
    x[0] = ~(x1 ^ m01 ^ x2 ^ x3 ^ m03 ^ m13);
    x[1] = x0 ^ m02 ^ m12 ^ x3 ^ m13 ^ m23 ^ m023 ^ m123;
    x[2] = x0 ^ m01 ^ x2 ^ m12 ^ m012 ^ m13 ^ m013 ^ m23 ^ m123;
    x[3] = x0 ^ x1 ^ x2 ^ m12 ^ m03 ^ m13 ^ m013;
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m23 = x3 & x2;
    const m012 = m02 & x1;
    const m013 = m13 & x0;
    const m023 = m23 & x0;
    const m123 = m23 & x1;
    x[0] = ~(x1 ^ m01 ^ x2 ^ x3 ^ m03 ^ m13);
    x[1] = ~(x0 ^ m01 ^ x2 ^ x3 ^ m13 ^ m013 ^ m23);
    x[2] = ~(x1 ^ m02 ^ x3 ^ m013 ^ m23 ^ m023 ^ m123);
    x[3] = ~(x0 ^ x1 ^ x2 ^ m012 ^ x3 ^ m03 ^ m023);
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m23 = x3 & x2;
    const m012 = m12 & x0;
    const m013 = m13 & x0;
    const m123 = m23 & x1;
    x[0] = ~(x0 ^ x1 ^ x2 ^ m02 ^ m12 ^ m012 ^ x3 ^ m013 ^ m123);
    x[1] = ~(x1 ^ x2 ^ m03);
    x[2] = ~(x0 ^ m01 ^ x2 ^ m12 ^ m012 ^ m13 ^ m013 ^ m23 ^ m123);
    x[3] = x1 ^ m01 ^ x2 ^ m02 ^ m012 ^ x3 ^ m23 ^ m123;
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m23 = x3 & x2;
    const m012 = m12 & x0;
    const m013 = m13 & x0;
    const m023 = m23 & x0;
    const m123 = m23 & x1;
    x[0] = ~(m01 ^ x2 ^ m03 ^ m13 ^ m23 ^ m023 ^ m123);
    x[1] = x1 ^ m01 ^ x2 ^ m02 ^ m12 ^ x3 ^ m03 ^ m013 ^ m023;
    x[2] = x0 ^ x1 ^ x2 ^ m012 ^ x3 ^ m03 ^ m13 ^ m013 ^ m123;
    x[3] = x0 ^ x1 ^ x2 ^ m02 ^ m012 ^ m03;
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m23 = x3 & x2;
    const m013 = m13 & x0;
    const m023 = m23 & x0;
    const m123 = m23 & x1;
    x[0] = ~(m01 ^ x2 ^ m12 ^ m03 ^ m13 ^ m013 ^ m23 ^ m023 ^ m123);
    x[1] = x0 ^ x1 ^ x2 ^ m02 ^ m13 ^ m023 ^ m123;
    x[2] = ~(x0 ^ x1 ^ m01 ^ x2 ^ x3);
    x[3] = ~(x0 ^ m12 ^ x3 ^ m013 ^ m23 ^ m023 ^ m123);
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m012 = m12 & x0;
    const m023 = m03 & x2;
    const m123 = m13 & x2;
    x[0] = ~(x0 ^ x1 ^ m01 ^ m012 ^ m13 ^ m023 ^ m123);
    x[1] = x1 ^ x2 ^ m012 ^ x3 ^ m03 ^ m13 ^ m023 ^ m123;
    x[2] = ~(x0 ^ x1 ^ m02 ^ m12 ^ m012 ^ x3 ^ m023);
    x[3] = x0 ^ x2 ^ x3 ^ m13;
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m23 = x3 & x2;
    const m012 = m12 & x0;
    const m013 = m13 & x0;
    const m023 = m23 & x0;
    x[0] = x0 ^ x1 ^ x2 ^ m12 ^ m13;
    x[1] = x1 ^ m01 ^ x2 ^ m03 ^ m013 ^ m23 ^ m023;
    x[2] = ~(x0 ^ m01 ^ x2 ^ x3 ^ m03 ^ m13 ^ m013 ^ m023);
    x[3] = ~(m01 ^ m12 ^ m012 ^ x3 ^ m023);
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m23 = x3 & x2;
    const m012 = m12 & x0;
    const m013 = m13 & x0;
    const m023 = m23 & x0;
    const m123 = m23 & x1;
    x[0] = x0 ^ x2 ^ m12 ^ x3 ^ m03 ^ m13 ^ m123;
    x[1] = x1 ^ x2 ^ m12 ^ m012 ^ x3 ^ m03 ^ m023 ^ m123;
    x[2] = m01 ^ m02 ^ m12 ^ m03 ^ m13 ^ m013 ^ m23 ^ m023;
    x[3] = x0 ^ x1 ^ x2 ^ m02 ^ m012 ^ m03 ^ m013 ^ m23;
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m23 = x3 & x2;
    const m012 = m02 & x1;
    const m013 = m13 & x0;
    const m023 = m23 & x0;
    x[0] = ~(x0 ^ x1 ^ x2 ^ x3 ^ m03 ^ m013 ^ m23 ^ m023);
    x[1] = m01 ^ x2 ^ m02 ^ x3 ^ m03 ^ m023;
    x[2] = ~(x0 ^ x1 ^ m01 ^ x2 ^ m02 ^ m012 ^ x3 ^ m13 ^ m013);
    x[3] = x1 ^ m01 ^ x2 ^ m03 ^ m013 ^ m23;
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m012 = m12 & x0;
    const m013 = m13 & x0;
    const m023 = m03 & x2;
    x[0] = x0 ^ m12 ^ x3 ^ m013;
    x[1] = x0 ^ x1 ^ m02 ^ m12 ^ m012 ^ x3 ^ m03 ^ m013;
    x[2] = x0 ^ m01 ^ x2 ^ m13 ^ m013 ^ m023;
    x[3] = ~(x1 ^ m01 ^ x2 ^ m012 ^ m03);
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m23 = x3 & x2;
    const m012 = m12 & x0;
    const m013 = m13 & x0;
    const m123 = m23 & x1;
    x[0] = ~(x0 ^ m01 ^ m02 ^ m12 ^ m012 ^ x3 ^ m013 ^ m123);
    x[1] = ~(x1 ^ x2 ^ m02 ^ x3);
    x[2] = ~(x0 ^ x1 ^ m12 ^ m13 ^ m013 ^ m23 ^ m123);
    x[3] = ~(x1 ^ m01 ^ x2 ^ m12 ^ m012 ^ x3 ^ m03 ^ m013 ^ m23 ^ m123);
  },
  (x: Int32Array): void => {
    const x0 = x[0]!, x1 = x[1]!, x2 = x[2]!, x3 = x[3]!;
    const m01 = x1 & x0;
    const m02 = x2 & x0;
    const m12 = x2 & x1;
    const m03 = x3 & x0;
    const m13 = x3 & x1;
    const m23 = x3 & x2;
    const m012 = m12 & x0;
    const m013 = m13 & x0;
    const m023 = m23 & x0;
    const m123 = m23 & x1;
    x[0] = ~(x0 ^ x1 ^ m12 ^ m13 ^ m013 ^ m23 ^ m123);
    x[1] = ~(x0 ^ x2 ^ m12 ^ x3 ^ m03 ^ m13 ^ m023 ^ m123);
    x[2] = x1 ^ m02 ^ x3 ^ m013 ^ m23 ^ m023;
    x[3] = m01 ^ x2 ^ m012 ^ m03 ^ m13 ^ m013;
  },
];

/** S-box i (0..7). */
export const S: readonly BitslicedSbox[] = sboxes.slice(0, 8);
/** Inverse S-box i (0..7). */
export const I: readonly BitslicedSbox[] = sboxes.slice(8);
