/*
 * dm-crypt's sector modes over any 128-bit block cipher given as "cipher n independent
 * blocks" functions: XTS, CBC and ECB, with the plain, plain64 and ESSIV IV generators.
 * Each sector (sectorSize bytes) is one unit with its own IV, numbered in 512-byte sectors
 * whatever the unit size (LUKS2 without iv_large_sectors, and LUKS1, whose units are 512).
 * Spec: IEEE Std 1619-2018 (XTS); NIST SP 800-38A (CBC); Linux dm-crypt documentation (IVs).
 */
#ifndef NBDCRYPT_SECTOR_MODES_H
#define NBDCRYPT_SECTOR_MODES_H
#include <stddef.h>
#include <stdint.h>

typedef void (*blocks_fn)(const void *ks, const uint8_t *in, uint8_t *out, size_t n);
typedef struct {
  blocks_fn enc, dec;
} block_cipher;

typedef enum { MODE_ECB, MODE_CBC, MODE_XTS } sector_mode;
typedef enum { IV_NONE, IV_PLAIN, IV_PLAIN64, IV_ESSIV } iv_gen;

typedef struct {
  const block_cipher *bc;
  sector_mode mode;
  iv_gen iv;
  const void *data; /* the data key's schedule (XTS: the first half of the key) */
  const void *tweak; /* XTS: the tweak key's schedule (the second half of the key) */
  const void *essiv; /* ESSIV: the schedule of hash(whole key) */
} sector_cipher;

/* The IV of 512-byte sector n before ESSIV's encryption: plain64 is LE64(n), plain LE32(n). */
void sector_iv_base(iv_gen g, uint64_t n, uint8_t iv[16]);
/* Ciphers len bytes (a multiple of ss, a multiple of 16) of sectors first, first + ss/512, ... */
void sector_crypt(const sector_cipher *c, int enc, const uint8_t *src, uint8_t *dst, size_t len, uint64_t first, size_t ss);
#endif
