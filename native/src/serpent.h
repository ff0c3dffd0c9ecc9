/*
 * Serpent block cipher (128-bit block; 128-, 192- and 256-bit keys), bitsliced. Byte order
 * is that of Linux's serpent_generic and dm-crypt (block and key bytes read as little-endian
 * 32-bit words), which the NESSIE-format vectors on the authors' site use.
 * Spec: Anderson, Biham, Knudsen, "Serpent: A Proposal for the Advanced Encryption Standard".
 */
#ifndef NBDCRYPT_SERPENT_H
#define NBDCRYPT_SERPENT_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint32_t k[33][4]; /* the 33 round keys, already through their S-boxes (bitslice form) */
} serpent_key;

/* len is 16, 24 or 32; returns 0 on a bad length. */
int serpent_set_key(serpent_key *ks, const uint8_t *key, size_t len);
/* n independent 16-byte blocks; in and out may be the same memory. */
void serpent_encrypt_blocks(const void *ks, const uint8_t *in, uint8_t *out, size_t n);
void serpent_decrypt_blocks(const void *ks, const uint8_t *in, uint8_t *out, size_t n);
#endif
