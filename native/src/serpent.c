/*
 * Serpent, bitsliced as its authors describe it: the block is four 32-bit words X0..X3 and
 * each round is "key mixing, 32 copies of one 4-bit S-box applied across the words, linear
 * transformation", so no initial or final permutation is needed. Eight blocks are ciphered
 * at once by running the same code on 8-lane vectors (GCC/Clang vector extensions: SSE2 on
 * x86-64, NEON on arm64), which is where the speed comes from; a lone block (CBC encryption)
 * takes the scalar path through the very same macros.
 * S-box tables (for reference; serpent-sboxes.h implements them):
 *   S0 3 8 15 1 10 6 5 11 14 13 4 2 7 0 9 12     S4 1 15 8 3 12 0 11 6 2 5 4 10 9 14 7 13
 *   S1 15 12 2 7 9 0 5 10 1 11 14 8 6 13 3 4     S5 15 5 2 11 4 10 9 12 0 3 14 8 13 6 7 1
 *   S2 8 6 7 9 3 12 10 15 13 1 14 4 0 11 5 2     S6 7 2 12 5 8 4 6 11 14 9 1 15 13 3 10 0
 *   S3 0 15 11 8 12 9 6 3 13 1 2 4 10 7 5 14     S7 1 13 15 0 14 8 2 11 7 4 12 10 9 3 5 6
 * Spec: Anderson, Biham, Knudsen, "Serpent: A Proposal for the Advanced Encryption Standard"
 * (1998), sections 2.1-2.3 (bitslice cipher, key schedule).
 */
#include <string.h>

#include "serpent.h"
#include "serpent-sboxes.h"

#define LANES 8
typedef uint32_t vec __attribute__((vector_size(4 * LANES)));

#define PHI 0x9e3779b9u
#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static inline uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline void put_le32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }

/* The linear transformation and its inverse (spec section 2.2). */
#define LT(x0, x1, x2, x3) do { \
    x0 = ROL(x0, 13); x2 = ROL(x2, 3); x1 ^= x0 ^ x2; x3 ^= x2 ^ (x0 << 3); \
    x1 = ROL(x1, 1); x3 = ROL(x3, 7); x0 ^= x1 ^ x3; x2 ^= x3 ^ (x1 << 7); \
    x0 = ROL(x0, 5); x2 = ROL(x2, 22); \
  } while (0)
#define ILT(x0, x1, x2, x3) do { \
    x2 = ROR(x2, 22); x0 = ROR(x0, 5); x2 ^= x3 ^ (x1 << 7); x0 ^= x1 ^ x3; \
    x3 = ROR(x3, 7); x1 = ROR(x1, 1); x3 ^= x2 ^ (x0 << 3); x1 ^= x0 ^ x2; \
    x2 = ROR(x2, 3); x0 = ROR(x0, 13); \
  } while (0)
#define KX(r) do { x0 ^= k[r][0]; x1 ^= k[r][1]; x2 ^= k[r][2]; x3 ^= k[r][3]; } while (0)

/* Round r (0..30) of encryption with S-box S, and its inverse for decryption. */
#define ER(r, S) do { KX(r); S(x0, x1, x2, x3); LT(x0, x1, x2, x3); } while (0)
#define DR(r, I) do { ILT(x0, x1, x2, x3); I(x0, x1, x2, x3); KX(r); } while (0)

#define ENCRYPT_ROUNDS() do { \
    ER(0, S0); ER(1, S1); ER(2, S2); ER(3, S3); ER(4, S4); ER(5, S5); ER(6, S6); ER(7, S7); \
    ER(8, S0); ER(9, S1); ER(10, S2); ER(11, S3); ER(12, S4); ER(13, S5); ER(14, S6); ER(15, S7); \
    ER(16, S0); ER(17, S1); ER(18, S2); ER(19, S3); ER(20, S4); ER(21, S5); ER(22, S6); ER(23, S7); \
    ER(24, S0); ER(25, S1); ER(26, S2); ER(27, S3); ER(28, S4); ER(29, S5); ER(30, S6); \
    KX(31); S7(x0, x1, x2, x3); KX(32); \
  } while (0)
#define DECRYPT_ROUNDS() do { \
    KX(32); I7(x0, x1, x2, x3); KX(31); \
    DR(30, I6); DR(29, I5); DR(28, I4); DR(27, I3); DR(26, I2); DR(25, I1); DR(24, I0); \
    DR(23, I7); DR(22, I6); DR(21, I5); DR(20, I4); DR(19, I3); DR(18, I2); DR(17, I1); DR(16, I0); \
    DR(15, I7); DR(14, I6); DR(13, I5); DR(12, I4); DR(11, I3); DR(10, I2); DR(9, I1); DR(8, I0); \
    DR(7, I7); DR(6, I6); DR(5, I5); DR(4, I4); DR(3, I3); DR(2, I2); DR(1, I1); DR(0, I0); \
  } while (0)

int serpent_set_key(serpent_key *ks, const uint8_t *key, size_t len) {
  if (len != 16 && len != 24 && len != 32) return 0;
  /* A short key is padded to 256 bits with one 1 bit after its last bit, then zeroes. */
  uint8_t full[32] = {0};
  memcpy(full, key, len);
  if (len < 32) full[len] = 1;
  uint32_t w[140];
  for (int i = 0; i < 8; i++) w[i] = le32(full + 4 * i);
  for (int i = 8; i < 140; i++) {
    uint32_t t = w[i - 8] ^ w[i - 5] ^ w[i - 3] ^ w[i - 1] ^ PHI ^ (uint32_t)(i - 8);
    w[i] = ROL(t, 11);
  }
  /* Round key i goes through S-box (3 - i) mod 8. */
  for (int i = 0; i < 33; i++) {
    uint32_t x0 = w[8 + 4 * i], x1 = w[9 + 4 * i], x2 = w[10 + 4 * i], x3 = w[11 + 4 * i];
    switch ((35 - i) % 8) {
      case 0: S0(x0, x1, x2, x3); break;
      case 1: S1(x0, x1, x2, x3); break;
      case 2: S2(x0, x1, x2, x3); break;
      case 3: S3(x0, x1, x2, x3); break;
      case 4: S4(x0, x1, x2, x3); break;
      case 5: S5(x0, x1, x2, x3); break;
      case 6: S6(x0, x1, x2, x3); break;
      default: S7(x0, x1, x2, x3); break;
    }
    ks->k[i][0] = x0; ks->k[i][1] = x1; ks->k[i][2] = x2; ks->k[i][3] = x3;
  }
  memset(w, 0, sizeof w);
  memset(full, 0, sizeof full);
  __asm__ __volatile__("" : : "r"(w), "r"(full) : "memory"); /* keep the wipes */
  return 1;
}

/* Lane j of x0..x3 <- words 0..3 of block j, and back. */
#define LOAD_LANES(in) do { \
    for (int j = 0; j < LANES; j++) { \
      x0[j] = le32(in + 16 * j); x1[j] = le32(in + 16 * j + 4); \
      x2[j] = le32(in + 16 * j + 8); x3[j] = le32(in + 16 * j + 12); \
    } \
  } while (0)
#define STORE_LANES(out) do { \
    for (int j = 0; j < LANES; j++) { \
      put_le32(out + 16 * j, x0[j]); put_le32(out + 16 * j + 4, x1[j]); \
      put_le32(out + 16 * j + 8, x2[j]); put_le32(out + 16 * j + 12, x3[j]); \
    } \
  } while (0)
#define LOAD_ONE(in) uint32_t x0 = le32(in), x1 = le32(in + 4), x2 = le32(in + 8), x3 = le32(in + 12)
#define STORE_ONE(out) do { put_le32(out, x0); put_le32(out + 4, x1); put_le32(out + 8, x2); put_le32(out + 12, x3); } while (0)

void serpent_encrypt_blocks(const void *key, const uint8_t *in, uint8_t *out, size_t n) {
  const uint32_t (*k)[4] = ((const serpent_key *)key)->k;
  for (; n >= LANES; n -= LANES, in += 16 * LANES, out += 16 * LANES) {
    vec x0, x1, x2, x3;
    LOAD_LANES(in);
    ENCRYPT_ROUNDS();
    STORE_LANES(out);
  }
  for (; n > 0; n--, in += 16, out += 16) {
    LOAD_ONE(in);
    ENCRYPT_ROUNDS();
    STORE_ONE(out);
  }
}

void serpent_decrypt_blocks(const void *key, const uint8_t *in, uint8_t *out, size_t n) {
  const uint32_t (*k)[4] = ((const serpent_key *)key)->k;
  for (; n >= LANES; n -= LANES, in += 16 * LANES, out += 16 * LANES) {
    vec x0, x1, x2, x3;
    LOAD_LANES(in);
    DECRYPT_ROUNDS();
    STORE_LANES(out);
  }
  for (; n > 0; n--, in += 16, out += 16) {
    LOAD_ONE(in);
    DECRYPT_ROUNDS();
    STORE_ONE(out);
  }
}
