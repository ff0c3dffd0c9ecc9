/*
 * Twofish, table-driven. The permutations q0 and q1 are built from their 4-bit tables t0..t3
 * (spec section 4.3.5); h (section 4.3.2) is evaluated once per byte value and key at setup
 * to fill the four MDS-multiplied S-box tables, so g(X) is four lookups and three XORs.
 * Two blocks go through the rounds interleaved, so the CPU has independent lookups to
 * overlap; a lone block (CBC encryption) takes a one-block loop.
 * Spec: Schneier, Kelsey, Whiting, Wagner, Hall, Ferguson, "Twofish: A 128-Bit Block Cipher"
 * (1998), section 4.
 */
#include <string.h>

#include "twofish.h"

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static inline uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline void put_le32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }

/* q0 and q1 from their nibble tables (section 4.3.5). */
static const uint8_t QT[2][4][16] = {
  {{0x8, 0x1, 0x7, 0xD, 0x6, 0xF, 0x3, 0x2, 0x0, 0xB, 0x5, 0x9, 0xE, 0xC, 0xA, 0x4},
   {0xE, 0xC, 0xB, 0x8, 0x1, 0x2, 0x3, 0x5, 0xF, 0x4, 0xA, 0x6, 0x7, 0x0, 0x9, 0xD},
   {0xB, 0xA, 0x5, 0xE, 0x6, 0xD, 0x9, 0x0, 0xC, 0x8, 0xF, 0x3, 0x2, 0x4, 0x7, 0x1},
   {0xD, 0x7, 0xF, 0x4, 0x1, 0x2, 0x6, 0xE, 0x9, 0xB, 0x3, 0x0, 0x8, 0x5, 0xC, 0xA}},
  {{0x2, 0x8, 0xB, 0xD, 0xF, 0x7, 0x6, 0xE, 0x3, 0x1, 0x9, 0x4, 0x0, 0xA, 0xC, 0x5},
   {0x1, 0xE, 0x2, 0xB, 0x4, 0xC, 0x3, 0x7, 0x6, 0xD, 0xA, 0x5, 0xF, 0x9, 0x0, 0x8},
   {0x4, 0xC, 0x7, 0x5, 0x1, 0x6, 0x9, 0xA, 0x0, 0xE, 0xD, 0x8, 0x2, 0xB, 0x3, 0xF},
   {0xB, 0x9, 0x5, 0x1, 0xC, 0x3, 0xD, 0xE, 0x6, 0x4, 0x7, 0xF, 0x2, 0x0, 0x8, 0xA}},
};

static uint8_t q_eval(int which, uint8_t x) {
  const uint8_t (*t)[16] = QT[which];
  uint8_t a = x >> 4, b = x & 15;
  uint8_t a1 = a ^ b, b1 = (a ^ (uint8_t)(((b >> 1) | (b << 3)) & 15) ^ (uint8_t)((8 * a) & 15)) & 15;
  uint8_t a2 = t[0][a1], b2 = t[1][b1];
  uint8_t a3 = a2 ^ b2, b3 = (a2 ^ (uint8_t)(((b2 >> 1) | (b2 << 3)) & 15) ^ (uint8_t)((8 * a2) & 15)) & 15;
  return (uint8_t)(t[3][b3] << 4 | t[2][a3]);
}

/* Multiplication in GF(2^8) modulo the given primitive polynomial. */
static uint8_t gf_mul(uint8_t a, uint8_t b, unsigned poly) {
  unsigned r = 0, x = a;
  for (; b; b >>= 1, x <<= 1) {
    if (x & 0x100) x ^= poly;
    if (b & 1) r ^= x;
  }
  return (uint8_t)r;
}

#define MDS_POLY 0x169 /* x^8 + x^6 + x^5 + x^3 + 1 */
#define RS_POLY 0x14D  /* x^8 + x^6 + x^3 + x^2 + 1 */
static const uint8_t MDS[4][4] = {{0x01, 0xEF, 0x5B, 0x5B}, {0x5B, 0xEF, 0xEF, 0x01}, {0xEF, 0x5B, 0x01, 0xEF}, {0xEF, 0x01, 0xEF, 0x5B}};
static const uint8_t RS[4][8] = {{0x01, 0xA4, 0x55, 0x87, 0x5A, 0x58, 0xDB, 0x9E},
                                 {0xA4, 0x56, 0x82, 0xF3, 0x1E, 0xC6, 0x68, 0xE5},
                                 {0x02, 0xA1, 0xFC, 0xC1, 0x47, 0xAE, 0x3D, 0x19},
                                 {0xA4, 0x55, 0x87, 0x5A, 0x58, 0xDB, 0x9E, 0x03}};

/*
 * Byte j of h's S-box stage: x through the chain of q permutations of column j, XORed with
 * byte j of the key words l[k-1] (innermost) .. l[0] (outermost) in between.
 * Column chains from the input side: k = 4 adds q1 q0 q0 q1, k >= 3 adds q1 q1 q0 q0, then
 * q0 q1 q0 q1 | q0 q0 q1 q1 | q1 q0 q1 q0 (second, and last, stage per column).
 */
static uint8_t h_byte(int j, uint8_t x, const uint32_t *l, int k) {
  static const int q4[4] = {1, 0, 0, 1}, q3[4] = {1, 1, 0, 0}, qa[4] = {0, 1, 0, 1}, qb[4] = {0, 0, 1, 1}, qc[4] = {1, 0, 1, 0};
  const int sh = 8 * j;
  if (k == 4) x = q_eval(q4[j], x) ^ (uint8_t)(l[3] >> sh);
  if (k >= 3) x = q_eval(q3[j], x) ^ (uint8_t)(l[2] >> sh);
  x = q_eval(qa[j], x) ^ (uint8_t)(l[1] >> sh);
  x = q_eval(qb[j], x) ^ (uint8_t)(l[0] >> sh);
  return q_eval(qc[j], x);
}

/* Column j of the MDS matrix times byte y, as a little-endian word. */
static uint32_t mds_column(int j, uint8_t y) {
  uint32_t z = 0;
  for (int i = 0; i < 4; i++) z |= (uint32_t)gf_mul(MDS[i][j], y, MDS_POLY) << (8 * i);
  return z;
}

static uint32_t h_word(uint32_t x, const uint32_t *l, int k) {
  uint32_t z = 0;
  for (int j = 0; j < 4; j++) z ^= mds_column(j, h_byte(j, (uint8_t)(x >> (8 * j)), l, k));
  return z;
}

int twofish_set_key(twofish_key *ks, const uint8_t *key, size_t len) {
  if (len != 16 && len != 24 && len != 32) return 0;
  const int k = (int)len / 8;
  uint32_t me[4], mo[4], sv[4];
  for (int i = 0; i < k; i++) {
    me[i] = le32(key + 8 * i);
    mo[i] = le32(key + 8 * i + 4);
    /* S_i = RS . (m_8i .. m_8i+7); the S-box key list is (S_k-1, ..., S_0). */
    uint32_t s = 0;
    for (int r = 0; r < 4; r++) {
      uint8_t acc = 0;
      for (int c = 0; c < 8; c++) acc ^= gf_mul(RS[r][c], key[8 * i + c], RS_POLY);
      s |= (uint32_t)acc << (8 * r);
    }
    sv[k - 1 - i] = s;
  }
  const uint32_t rho = 0x01010101u;
  for (uint32_t i = 0; i < 20; i++) {
    uint32_t a = h_word(2 * i * rho, me, k);
    uint32_t b = h_word((2 * i + 1) * rho, mo, k);
    b = ROL(b, 8);
    ks->k[2 * i] = a + b;
    uint32_t t = a + 2 * b;
    ks->k[2 * i + 1] = ROL(t, 9);
  }
  for (int j = 0; j < 4; j++)
    for (int x = 0; x < 256; x++) ks->s[j][x] = mds_column(j, h_byte(j, (uint8_t)x, sv, k));
  memset(me, 0, sizeof me);
  memset(mo, 0, sizeof mo);
  memset(sv, 0, sizeof sv);
  __asm__ __volatile__("" : : "r"(me), "r"(mo), "r"(sv) : "memory"); /* keep the wipes */
  return 1;
}

#define G0(x) (s[0][(uint8_t)(x)] ^ s[1][(uint8_t)((x) >> 8)] ^ s[2][(uint8_t)((x) >> 16)] ^ s[3][(x) >> 24])
#define G1(x) (s[0][(x) >> 24] ^ s[1][(uint8_t)(x)] ^ s[2][(uint8_t)((x) >> 8)] ^ s[3][(uint8_t)((x) >> 16)]) /* g(ROL(x, 8)) */

/* Two rounds of encryption (2r, 2r+1) on the words of one block, suffix p. */
#define ENC2(r, p) do { \
    uint32_t t0 = G0(a##p), t1 = G1(b##p); \
    c##p ^= t0 + t1 + K[8 + 4 * (r)]; c##p = ROR(c##p, 1); \
    d##p = ROL(d##p, 1) ^ (t0 + 2 * t1 + K[9 + 4 * (r)]); \
    t0 = G0(c##p); t1 = G1(d##p); \
    a##p ^= t0 + t1 + K[10 + 4 * (r)]; a##p = ROR(a##p, 1); \
    b##p = ROL(b##p, 1) ^ (t0 + 2 * t1 + K[11 + 4 * (r)]); \
  } while (0)
/* Decryption names the words as loaded (a, b, c, d = ciphertext words 0..3), which are the
 * encryption's c, d, a, b; so it mirrors ENC2 with the roles of (a, b) and (c, d) swapped. */
#define DEC2(r, p) do { \
    uint32_t t0 = G0(a##p), t1 = G1(b##p); \
    c##p = ROL(c##p, 1) ^ (t0 + t1 + K[10 + 4 * (r)]); \
    d##p ^= t0 + 2 * t1 + K[11 + 4 * (r)]; d##p = ROR(d##p, 1); \
    t0 = G0(c##p); t1 = G1(d##p); \
    a##p = ROL(a##p, 1) ^ (t0 + t1 + K[8 + 4 * (r)]); \
    b##p ^= t0 + 2 * t1 + K[9 + 4 * (r)]; b##p = ROR(b##p, 1); \
  } while (0)

/* Input whitening (w = 0: K0..K3 on a..d) or output whitening (w = 4), for block p at byte i. */
#define LOAD(p, in, w) uint32_t a##p = le32(in) ^ K[w], b##p = le32((in) + 4) ^ K[(w) + 1], c##p = le32((in) + 8) ^ K[(w) + 2], d##p = le32((in) + 12) ^ K[(w) + 3]
/* The last round's swap is undone by storing c, d, a, b. */
#define STORE_SWAPPED(p, out, w) do { \
    put_le32(out, c##p ^ K[w]); put_le32((out) + 4, d##p ^ K[(w) + 1]); \
    put_le32((out) + 8, a##p ^ K[(w) + 2]); put_le32((out) + 12, b##p ^ K[(w) + 3]); \
  } while (0)

void twofish_encrypt_blocks(const void *key, const uint8_t *in, uint8_t *out, size_t n) {
  const twofish_key *ks = key;
  const uint32_t *K = ks->k;
  const uint32_t (*s)[256] = ks->s;
  for (; n >= 2; n -= 2, in += 32, out += 32) {
    LOAD(0, in, 0);
    LOAD(1, in + 16, 0);
    for (int r = 0; r < 8; r++) {
      ENC2(r, 0);
      ENC2(r, 1);
    }
    STORE_SWAPPED(0, out, 4);
    STORE_SWAPPED(1, out + 16, 4);
  }
  if (n == 1) {
    LOAD(0, in, 0);
    for (int r = 0; r < 8; r++) ENC2(r, 0);
    STORE_SWAPPED(0, out, 4);
  }
}

void twofish_decrypt_blocks(const void *key, const uint8_t *in, uint8_t *out, size_t n) {
  const twofish_key *ks = key;
  const uint32_t *K = ks->k;
  const uint32_t (*s)[256] = ks->s;
  for (; n >= 2; n -= 2, in += 32, out += 32) {
    LOAD(0, in, 4);
    LOAD(1, in + 16, 4);
    for (int r = 7; r >= 0; r--) {
      DEC2(r, 0);
      DEC2(r, 1);
    }
    STORE_SWAPPED(0, out, 0);
    STORE_SWAPPED(1, out + 16, 0);
  }
  if (n == 1) {
    LOAD(0, in, 4);
    for (int r = 7; r >= 0; r--) DEC2(r, 0);
    STORE_SWAPPED(0, out, 0);
  }
}
