/*
 * The addon's ciphers other than the aes-xts-plain64 fast path of xts.c: Twofish and Serpent
 * (twofish.c, serpent.c) and AES (OpenSSL EVP) in XTS, CBC and ECB with the plain, plain64
 * and ESSIV IVs (sector-modes.c). Exports newSectorKey, freeSectorKey, sectorCryptSync and
 * sectorCryptAsync; see src/native-addon.ts.
 */
#ifndef NBDCRYPT_SECTOR_CIPHERS_H
#define NBDCRYPT_SECTOR_CIPHERS_H
#include <stdbool.h>
#include <node_api.h>

napi_status register_sector_ciphers(napi_env env, napi_value exports);
/* True if v is a handle made by newSectorKey. */
bool is_sector_key(napi_env env, napi_value v);
#endif
