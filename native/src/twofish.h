/*
 * Twofish block cipher (128-bit block; 128-, 192- and 256-bit keys) with "full keying":
 * the key-dependent S-boxes and the MDS matrix are folded into four 256-entry word tables at
 * key setup, so a round is eight table lookups. Byte order as in the specification and
 * Linux's twofish_generic (little-endian words).
 * Spec: Schneier, Kelsey, Whiting, Wagner, Hall, Ferguson, "Twofish: A 128-Bit Block Cipher".
 */
#ifndef NBDCRYPT_TWOFISH_H
#define NBDCRYPT_TWOFISH_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t k[40];      /* whitening and round subkeys K0..K39 */
  uint32_t s[4][256];  /* s[j][x] = MDS column j times key-dependent S-box j of byte x */
} twofish_key;

/* len is 16, 24 or 32; returns 0 on a bad length. */
int twofish_set_key(twofish_key *ks, const uint8_t *key, size_t len);
/* n independent 16-byte blocks; in and out may be the same memory. */
void twofish_encrypt_blocks(const void *ks, const uint8_t *in, uint8_t *out, size_t n);
void twofish_decrypt_blocks(const void *ks, const uint8_t *in, uint8_t *out, size_t n);
#endif
