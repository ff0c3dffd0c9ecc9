/*
 * Serpent's eight S-boxes and their inverses in bitslice form, for serpent.c. Each macro
 * applies one 4-bit S-box to 32 (or, with a vector type, 32 x lanes) nibbles at once: bit j
 * of x0, x1, x2, x3 is bit 0, 1, 2, 3 of nibble j, as in the bitslice description of the
 * cipher. Every output bit is written as the algebraic normal form (XOR of AND-products of
 * input bits) of the S-box table it implements, tables as given in serpent.c; the ANDs shared
 * between output bits are computed once. Works for any integer or vector type (__typeof__).
 * Spec: R. Anderson, E. Biham, L. Knudsen, "Serpent: A Proposal for the Advanced Encryption
 * Standard" (1998), section 2 and appendix (S-box tables).
 */
#ifndef NBDCRYPT_SERPENT_SBOXES_H
#define NBDCRYPT_SERPENT_SBOXES_H

/* S0..S7: the forward S-boxes; I0..I7: their inverses. */
#define S0(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m012 = m12 & x0; \
    const __typeof__(x0) m023 = m03 & x2; \
    const __typeof__(x0) m123 = m13 & x2; \
    const __typeof__(x0) y0 = ~(x0 ^ m01 ^ x2 ^ m02 ^ m12 ^ m012 ^ x3 ^ m023 ^ m123); \
    const __typeof__(x0) y1 = ~(x0 ^ m02 ^ m12 ^ m012 ^ m13 ^ m023 ^ m123); \
    const __typeof__(x0) y2 = x1 ^ m01 ^ m02 ^ m012 ^ x3 ^ m13 ^ m123; \
    const __typeof__(x0) y3 = x0 ^ x1 ^ x2 ^ x3 ^ m03; \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define S1(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m23 = x3 & x2; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m023 = m23 & x0; \
    const __typeof__(x0) m123 = m23 & x1; \
    const __typeof__(x0) y0 = ~(x0 ^ x1 ^ m12 ^ m03 ^ m23 ^ m023 ^ m123); \
    const __typeof__(x0) y1 = ~(x0 ^ m01 ^ x2 ^ m02 ^ x3 ^ m13 ^ m013 ^ m023 ^ m123); \
    const __typeof__(x0) y2 = ~(x1 ^ m01 ^ x2 ^ x3); \
    const __typeof__(x0) y3 = ~(x1 ^ m02 ^ x3 ^ m03 ^ m013 ^ m023 ^ m123); \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define S2(x0, x1, x2, x3) do { \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m23 = x3 & x2; \
    const __typeof__(x0) m012 = m12 & x0; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m023 = m23 & x0; \
    const __typeof__(x0) y0 = x1 ^ x2 ^ m02 ^ x3; \
    const __typeof__(x0) y1 = x0 ^ x1 ^ x2 ^ m12 ^ m012 ^ m03 ^ m013 ^ m23 ^ m023; \
    const __typeof__(x0) y2 = x0 ^ x1 ^ m12 ^ x3 ^ m13 ^ m013 ^ m23 ^ m023; \
    const __typeof__(x0) y3 = ~(x0 ^ x1 ^ x2 ^ m012 ^ m13); \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define S3(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m23 = x3 & x2; \
    const __typeof__(x0) m012 = m12 & x0; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m023 = m23 & x0; \
    const __typeof__(x0) m123 = m23 & x1; \
    const __typeof__(x0) y0 = x0 ^ x1 ^ m12 ^ x3 ^ m03 ^ m23 ^ m023 ^ m123; \
    const __typeof__(x0) y1 = x0 ^ x1 ^ m02 ^ m03 ^ m013 ^ m23 ^ m023; \
    const __typeof__(x0) y2 = x0 ^ m01 ^ x2 ^ m012 ^ x3 ^ m13 ^ m013; \
    const __typeof__(x0) y3 = x0 ^ x1 ^ m01 ^ x2 ^ m02 ^ m012 ^ x3 ^ m23 ^ m023; \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define S4(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m23 = x3 & x2; \
    const __typeof__(x0) m012 = m12 & x0; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m023 = m23 & x0; \
    const __typeof__(x0) m123 = m23 & x1; \
    const __typeof__(x0) y0 = ~(x1 ^ m01 ^ x2 ^ x3 ^ m03 ^ m13); \
    const __typeof__(x0) y1 = x0 ^ m02 ^ m12 ^ x3 ^ m13 ^ m23 ^ m023 ^ m123; \
    const __typeof__(x0) y2 = x0 ^ m01 ^ x2 ^ m12 ^ m012 ^ m13 ^ m013 ^ m23 ^ m123; \
    const __typeof__(x0) y3 = x0 ^ x1 ^ x2 ^ m12 ^ m03 ^ m13 ^ m013; \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define S5(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m23 = x3 & x2; \
    const __typeof__(x0) m012 = m02 & x1; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m023 = m23 & x0; \
    const __typeof__(x0) m123 = m23 & x1; \
    const __typeof__(x0) y0 = ~(x1 ^ m01 ^ x2 ^ x3 ^ m03 ^ m13); \
    const __typeof__(x0) y1 = ~(x0 ^ m01 ^ x2 ^ x3 ^ m13 ^ m013 ^ m23); \
    const __typeof__(x0) y2 = ~(x1 ^ m02 ^ x3 ^ m013 ^ m23 ^ m023 ^ m123); \
    const __typeof__(x0) y3 = ~(x0 ^ x1 ^ x2 ^ m012 ^ x3 ^ m03 ^ m023); \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define S6(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m23 = x3 & x2; \
    const __typeof__(x0) m012 = m12 & x0; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m123 = m23 & x1; \
    const __typeof__(x0) y0 = ~(x0 ^ x1 ^ x2 ^ m02 ^ m12 ^ m012 ^ x3 ^ m013 ^ m123); \
    const __typeof__(x0) y1 = ~(x1 ^ x2 ^ m03); \
    const __typeof__(x0) y2 = ~(x0 ^ m01 ^ x2 ^ m12 ^ m012 ^ m13 ^ m013 ^ m23 ^ m123); \
    const __typeof__(x0) y3 = x1 ^ m01 ^ x2 ^ m02 ^ m012 ^ x3 ^ m23 ^ m123; \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define S7(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m23 = x3 & x2; \
    const __typeof__(x0) m012 = m12 & x0; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m023 = m23 & x0; \
    const __typeof__(x0) m123 = m23 & x1; \
    const __typeof__(x0) y0 = ~(m01 ^ x2 ^ m03 ^ m13 ^ m23 ^ m023 ^ m123); \
    const __typeof__(x0) y1 = x1 ^ m01 ^ x2 ^ m02 ^ m12 ^ x3 ^ m03 ^ m013 ^ m023; \
    const __typeof__(x0) y2 = x0 ^ x1 ^ x2 ^ m012 ^ x3 ^ m03 ^ m13 ^ m013 ^ m123; \
    const __typeof__(x0) y3 = x0 ^ x1 ^ x2 ^ m02 ^ m012 ^ m03; \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define I0(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m23 = x3 & x2; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m023 = m23 & x0; \
    const __typeof__(x0) m123 = m23 & x1; \
    const __typeof__(x0) y0 = ~(m01 ^ x2 ^ m12 ^ m03 ^ m13 ^ m013 ^ m23 ^ m023 ^ m123); \
    const __typeof__(x0) y1 = x0 ^ x1 ^ x2 ^ m02 ^ m13 ^ m023 ^ m123; \
    const __typeof__(x0) y2 = ~(x0 ^ x1 ^ m01 ^ x2 ^ x3); \
    const __typeof__(x0) y3 = ~(x0 ^ m12 ^ x3 ^ m013 ^ m23 ^ m023 ^ m123); \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define I1(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m012 = m12 & x0; \
    const __typeof__(x0) m023 = m03 & x2; \
    const __typeof__(x0) m123 = m13 & x2; \
    const __typeof__(x0) y0 = ~(x0 ^ x1 ^ m01 ^ m012 ^ m13 ^ m023 ^ m123); \
    const __typeof__(x0) y1 = x1 ^ x2 ^ m012 ^ x3 ^ m03 ^ m13 ^ m023 ^ m123; \
    const __typeof__(x0) y2 = ~(x0 ^ x1 ^ m02 ^ m12 ^ m012 ^ x3 ^ m023); \
    const __typeof__(x0) y3 = x0 ^ x2 ^ x3 ^ m13; \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define I2(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m23 = x3 & x2; \
    const __typeof__(x0) m012 = m12 & x0; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m023 = m23 & x0; \
    const __typeof__(x0) y0 = x0 ^ x1 ^ x2 ^ m12 ^ m13; \
    const __typeof__(x0) y1 = x1 ^ m01 ^ x2 ^ m03 ^ m013 ^ m23 ^ m023; \
    const __typeof__(x0) y2 = ~(x0 ^ m01 ^ x2 ^ x3 ^ m03 ^ m13 ^ m013 ^ m023); \
    const __typeof__(x0) y3 = ~(m01 ^ m12 ^ m012 ^ x3 ^ m023); \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define I3(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m23 = x3 & x2; \
    const __typeof__(x0) m012 = m12 & x0; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m023 = m23 & x0; \
    const __typeof__(x0) m123 = m23 & x1; \
    const __typeof__(x0) y0 = x0 ^ x2 ^ m12 ^ x3 ^ m03 ^ m13 ^ m123; \
    const __typeof__(x0) y1 = x1 ^ x2 ^ m12 ^ m012 ^ x3 ^ m03 ^ m023 ^ m123; \
    const __typeof__(x0) y2 = m01 ^ m02 ^ m12 ^ m03 ^ m13 ^ m013 ^ m23 ^ m023; \
    const __typeof__(x0) y3 = x0 ^ x1 ^ x2 ^ m02 ^ m012 ^ m03 ^ m013 ^ m23; \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define I4(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m23 = x3 & x2; \
    const __typeof__(x0) m012 = m02 & x1; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m023 = m23 & x0; \
    const __typeof__(x0) y0 = ~(x0 ^ x1 ^ x2 ^ x3 ^ m03 ^ m013 ^ m23 ^ m023); \
    const __typeof__(x0) y1 = m01 ^ x2 ^ m02 ^ x3 ^ m03 ^ m023; \
    const __typeof__(x0) y2 = ~(x0 ^ x1 ^ m01 ^ x2 ^ m02 ^ m012 ^ x3 ^ m13 ^ m013); \
    const __typeof__(x0) y3 = x1 ^ m01 ^ x2 ^ m03 ^ m013 ^ m23; \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define I5(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m012 = m12 & x0; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m023 = m03 & x2; \
    const __typeof__(x0) y0 = x0 ^ m12 ^ x3 ^ m013; \
    const __typeof__(x0) y1 = x0 ^ x1 ^ m02 ^ m12 ^ m012 ^ x3 ^ m03 ^ m013; \
    const __typeof__(x0) y2 = x0 ^ m01 ^ x2 ^ m13 ^ m013 ^ m023; \
    const __typeof__(x0) y3 = ~(x1 ^ m01 ^ x2 ^ m012 ^ m03); \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define I6(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m23 = x3 & x2; \
    const __typeof__(x0) m012 = m12 & x0; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m123 = m23 & x1; \
    const __typeof__(x0) y0 = ~(x0 ^ m01 ^ m02 ^ m12 ^ m012 ^ x3 ^ m013 ^ m123); \
    const __typeof__(x0) y1 = ~(x1 ^ x2 ^ m02 ^ x3); \
    const __typeof__(x0) y2 = ~(x0 ^ x1 ^ m12 ^ m13 ^ m013 ^ m23 ^ m123); \
    const __typeof__(x0) y3 = ~(x1 ^ m01 ^ x2 ^ m12 ^ m012 ^ x3 ^ m03 ^ m013 ^ m23 ^ m123); \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)
#define I7(x0, x1, x2, x3) do { \
    const __typeof__(x0) m01 = x1 & x0; \
    const __typeof__(x0) m02 = x2 & x0; \
    const __typeof__(x0) m12 = x2 & x1; \
    const __typeof__(x0) m03 = x3 & x0; \
    const __typeof__(x0) m13 = x3 & x1; \
    const __typeof__(x0) m23 = x3 & x2; \
    const __typeof__(x0) m012 = m12 & x0; \
    const __typeof__(x0) m013 = m13 & x0; \
    const __typeof__(x0) m023 = m23 & x0; \
    const __typeof__(x0) m123 = m23 & x1; \
    const __typeof__(x0) y0 = ~(x0 ^ x1 ^ m12 ^ m13 ^ m013 ^ m23 ^ m123); \
    const __typeof__(x0) y1 = ~(x0 ^ x2 ^ m12 ^ x3 ^ m03 ^ m13 ^ m023 ^ m123); \
    const __typeof__(x0) y2 = x1 ^ m02 ^ x3 ^ m013 ^ m23 ^ m023; \
    const __typeof__(x0) y3 = m01 ^ x2 ^ m012 ^ m03 ^ m13 ^ m013; \
    x0 = y0; x1 = y1; x2 = y2; x3 = y3; \
  } while (0)

#endif
