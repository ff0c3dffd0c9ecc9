/*
 * Argument parsing shared by the addon's cipher calls (xts.c, sector-ciphers.c): every one
 * takes (handle, encrypt, src, dst, firstSector, sectorSize). The TS layer validates too;
 * these checks keep the addon memory-safe when called alone.
 */
#ifndef NBDCRYPT_CALL_ARGS_H
#define NBDCRYPT_CALL_ARGS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

typedef struct {
  void *k; /* the key handle's data (an N-API external) */
  int enc;
  unsigned char *src, *dst;
  size_t len, ss;
  uint64_t first;
} call_args;

/* A Uint8Array's bytes; 0 if v is not one. */
int get_bytes(napi_env env, napi_value v, unsigned char **data, size_t *len);
/* An external's data; NULL if v is not an external. */
void *get_external(napi_env env, napi_value v);
/*
 * Parses (handle, encrypt, src, dst, firstSector, sectorSize); throws and returns 0 on error.
 * The handle must come from newSectorKey if `sector`, else from newKey.
 */
int parse_call(napi_env env, napi_value *argv, size_t argc, call_args *a, bool sector);
#endif
