/*
 * The sector modes of sector-modes.h. Blocks that do not depend on each other (XTS and ECB,
 * CBC decryption) go to the block cipher in batches, so its multi-block code (8-lane Serpent,
 * interleaved Twofish) runs at full width; CBC encryption is a chain and goes block by block.
 * Spec: IEEE Std 1619-2018 §5.2-5.4 (XTS, α multiplication); NIST SP 800-38A §6.2 (CBC).
 */
#include <string.h>

#include "sector-modes.h"

#define BATCH 32 /* blocks per call into the block cipher (512 bytes) */

/* Little-endian 64-bit loads and stores. */
static inline uint64_t ld64(const uint8_t *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
#else
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
#endif
}
static inline void st64(uint8_t *p, uint64_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(p, &v, 8);
#else
  for (int i = 0; i < 8; i++, v >>= 8) p[i] = (uint8_t)v;
#endif
}

static inline void xor16(uint8_t *d, const uint8_t *a, const uint8_t *b) {
  st64(d, ld64(a) ^ ld64(b));
  st64(d + 8, ld64(a + 8) ^ ld64(b + 8));
}

void sector_iv_base(iv_gen g, uint64_t n, uint8_t iv[16]) {
  memset(iv, 0, 16);
  if (g == IV_NONE) return;
  const int bytes = g == IV_PLAIN ? 4 : 8;
  for (int b = 0; b < bytes; b++) iv[b] = (uint8_t)(n >> (8 * b));
}

/* One XTS data unit; the tweak T lives in two 64-bit halves (lo = bytes 0-7, little-endian). */
static void xts_unit(const sector_cipher *c, int enc, const uint8_t *src, uint8_t *dst, size_t n, const uint8_t iv[16]) {
  uint8_t t[16], buf[BATCH * 16];
  uint64_t tw[BATCH][2];
  c->bc->enc(c->tweak, iv, t, 1);
  uint64_t lo = ld64(t), hi = ld64(t + 8);
  blocks_fn f = enc ? c->bc->enc : c->bc->dec;
  for (size_t done = 0; done < n;) {
    size_t m = n - done < BATCH ? n - done : BATCH;
    const uint8_t *in = src + 16 * done;
    for (size_t j = 0; j < m; j++) {
      tw[j][0] = lo;
      tw[j][1] = hi;
      st64(buf + 16 * j, ld64(in + 16 * j) ^ lo);
      st64(buf + 16 * j + 8, ld64(in + 16 * j + 8) ^ hi);
      /* T <- T·α in GF(2^128), little-endian (IEEE 1619 §5.2). */
      uint64_t carry = hi >> 63;
      hi = (hi << 1) | (lo >> 63);
      lo = (lo << 1) ^ (0x87 & (0 - carry));
    }
    f(c->data, buf, buf, m);
    uint8_t *out = dst + 16 * done;
    for (size_t j = 0; j < m; j++) {
      st64(out + 16 * j, ld64(buf + 16 * j) ^ tw[j][0]);
      st64(out + 16 * j + 8, ld64(buf + 16 * j + 8) ^ tw[j][1]);
    }
    done += m;
  }
}

static void cbc_encrypt_unit(const sector_cipher *c, const uint8_t *src, uint8_t *dst, size_t n, const uint8_t iv[16]) {
  uint8_t x[16];
  const uint8_t *prev = iv;
  for (size_t j = 0; j < n; j++) {
    xor16(x, src + 16 * j, prev);
    c->bc->enc(c->data, x, dst + 16 * j, 1);
    prev = dst + 16 * j;
  }
}

static void cbc_decrypt_unit(const sector_cipher *c, const uint8_t *src, uint8_t *dst, size_t n, const uint8_t iv[16]) {
  uint8_t prev[16], ct[BATCH * 16], pt[BATCH * 16];
  memcpy(prev, iv, 16);
  for (size_t done = 0; done < n;) {
    size_t m = n - done < BATCH ? n - done : BATCH;
    memcpy(ct, src + 16 * done, 16 * m); /* src may be dst */
    c->bc->dec(c->data, ct, pt, m);
    xor16(dst + 16 * done, pt, prev);
    for (size_t j = 1; j < m; j++) xor16(dst + 16 * (done + j), pt + 16 * j, ct + 16 * (j - 1));
    memcpy(prev, ct + 16 * (m - 1), 16);
    done += m;
  }
}

void sector_crypt(const sector_cipher *c, int enc, const uint8_t *src, uint8_t *dst, size_t len, uint64_t first, size_t ss) {
  if (c->mode == MODE_ECB) {
    (enc ? c->bc->enc : c->bc->dec)(c->data, src, dst, len / 16);
    return;
  }
  const uint64_t step = ss / 512;
  uint8_t iv[16];
  for (size_t off = 0; off < len; off += ss, first += step) {
    sector_iv_base(c->iv, first, iv);
    if (c->iv == IV_ESSIV) c->bc->enc(c->essiv, iv, iv, 1);
    if (c->mode == MODE_XTS) xts_unit(c, enc, src + off, dst + off, ss / 16, iv);
    else if (enc) cbc_encrypt_unit(c, src + off, dst + off, ss / 16, iv);
    else cbc_decrypt_unit(c, src + off, dst + off, ss / 16, iv);
  }
}
