/*
 * The cipher calls shared by xts.c and sector-ciphers.c: each family exports a sync and an
 * async call taking (handle, encrypt, src, dst, firstSector, sectorSize); this file parses
 * them (the TS layer validates too; these checks keep the addon memory-safe when called
 * alone) and runs them, the async one on the libuv pool with its buffers kept alive.
 */
#ifndef NBDCRYPT_CRYPT_CALL_H
#define NBDCRYPT_CRYPT_CALL_H
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
/* What a cipher family plugs into the call paths. */
typedef struct {
  bool sector;      /* its handles come from newSectorKey (else from newKey) */
  const char *name; /* for error messages, e.g. "xts cipher (native engine)" */
  /* Runs one call, on any thread; 0 with err set on failure. */
  int (*run)(void *k, const call_args *a, char *err, size_t errn);
  /* On the JS thread: an async call starts using k / has finished with it (may free k). */
  void (*hold)(void *k);
  void (*release)(void *k);
} crypt_family;

napi_value crypt_call_sync(napi_env env, napi_callback_info info, const crypt_family *f);
/* Returns a Promise settled when the pool thread is done. */
napi_value crypt_call_async(napi_env env, napi_callback_info info, const crypt_family *f);
#endif
