/*
 * The shared cipher call paths of crypt-call.h.
 * Spec: N-API async work and promises (via pool-job.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "crypt-call.h"
#include "pool-job.h"
#include "sector-ciphers.h"

int get_bytes(napi_env env, napi_value v, unsigned char **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  void *p;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &off) != napi_ok || type != napi_uint8_array) return 0;
  *data = p;
  return 1;
}

void *get_external(napi_env env, napi_value v) {
  napi_valuetype t;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

/* Parses (handle, encrypt, src, dst, firstSector, sectorSize); throws and returns 0 on error. */
static int parse_call(napi_env env, napi_value *argv, size_t argc, call_args *a, bool sector) {
  if (argc < 6) { napi_throw_type_error(env, NULL, "nbdcrypt: expected (key, encrypt, src, dst, firstSector, sectorSize)"); return 0; }
  a->k = is_sector_key(env, argv[0]) == sector ? get_external(env, argv[0]) : NULL;
  if (a->k == NULL) { napi_throw_type_error(env, NULL, sector ? "key handle must come from newSectorKey()" : "key handle must come from newKey()"); return 0; }
  bool enc;
  if (napi_get_value_bool(env, argv[1], &enc) != napi_ok) { napi_throw_type_error(env, NULL, "encrypt must be a boolean"); return 0; }
  a->enc = enc ? 1 : 0;
  size_t dlen;
  if (!get_bytes(env, argv[2], &a->src, &a->len)) { napi_throw_type_error(env, NULL, "src must be a Buffer"); return 0; }
  if (!get_bytes(env, argv[3], &a->dst, &dlen)) { napi_throw_type_error(env, NULL, "dst must be a Buffer"); return 0; }
  double first, ss;
  if (napi_get_value_double(env, argv[4], &first) != napi_ok) { napi_throw_type_error(env, NULL, "firstSector must be a number"); return 0; }
  if (napi_get_value_double(env, argv[5], &ss) != napi_ok) { napi_throw_type_error(env, NULL, "sectorSize must be a number"); return 0; }
  if (!(ss >= 512 && ss <= 4096) || ss != (double)(size_t)ss || ((size_t)ss & ((size_t)ss - 1)) != 0) {
    napi_throw_range_error(env, NULL, "sectorSize must be a power of two from 512 to 4096"); return 0;
  }
  a->ss = (size_t)ss;
  if (!(first >= 0 && first <= JS_MAX_SAFE_INTEGER) || first != (double)(uint64_t)first) {
    napi_throw_range_error(env, NULL, "firstSector must be a non-negative safe integer"); return 0;
  }
  a->first = (uint64_t)first;
  if (a->len % a->ss != 0) { napi_throw_range_error(env, NULL, "src length must be a multiple of sectorSize"); return 0; }
  if (dlen != a->len) { napi_throw_range_error(env, NULL, "dst length must equal src length"); return 0; }
  if (a->src != a->dst && a->src < a->dst + a->len && a->dst < a->src + a->len) {
    napi_throw_range_error(env, NULL, "src and dst must be the same bytes or not overlap"); return 0;
  }
  if (a->len > (size_t)INT32_MAX) { napi_throw_range_error(env, NULL, "buffer too large"); return 0; }
  return 1;
}

#define THROW(env, kind, msg) do { napi_throw_##kind((env), NULL, (msg)); return NULL; } while (0)

napi_value crypt_call_sync(napi_env env, napi_callback_info info, const crypt_family *f) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) THROW(env, error, "nbdcrypt: napi_get_cb_info failed");
  call_args a;
  if (!parse_call(env, argv, argc, &a, f->sector)) return NULL;
  char err[256];
  if (!f->run(a.k, &a, err, sizeof err)) THROW(env, error, err);
  return NULL;
}

typedef struct {
  const crypt_family *f;
  call_args a;
  pool_job job;
  napi_ref src_ref, dst_ref; /* keep the buffers alive while a pool thread uses them */
  int ok;
  char err[256];
} async_call;

static void async_execute(napi_env env, void *data) {
  (void)env;
  async_call *c = data;
  c->ok = c->f->run(c->a.k, &c->a, c->err, sizeof c->err);
}

static void async_complete(napi_env env, napi_status status, void *data) {
  async_call *c = data;
  napi_delete_reference(env, c->src_ref);
  napi_delete_reference(env, c->dst_ref);
  c->f->release(c->a.k);
  napi_value v;
  if (status == napi_ok && c->ok) {
    napi_get_undefined(env, &v);
  } else {
    if (status != napi_ok) snprintf(c->err, sizeof c->err, "%s: async call cancelled", c->f->name);
    napi_value msg;
    napi_create_string_utf8(env, c->err, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &v);
  }
  pool_job_settle(env, &c->job, status == napi_ok && c->ok, v);
  free(c);
}

napi_value crypt_call_async(napi_env env, napi_callback_info info, const crypt_family *f) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) THROW(env, error, "nbdcrypt: napi_get_cb_info failed");
  async_call *c = calloc(1, sizeof *c);
  if (c == NULL) THROW(env, error, "nbdcrypt: out of memory");
  c->f = f;
  if (!parse_call(env, argv, argc, &c->a, f->sector)) { free(c); return NULL; }
  napi_create_reference(env, argv[2], 1, &c->src_ref);
  napi_create_reference(env, argv[3], 1, &c->dst_ref);
  f->hold(c->a.k);
  napi_value promise = pool_job_start(env, &c->job, "nbdcrypt_crypt", async_execute, async_complete, c);
  if (!promise) {
    f->release(c->a.k);
    napi_delete_reference(env, c->src_ref);
    napi_delete_reference(env, c->dst_ref);
    free(c);
    THROW(env, error, "nbdcrypt: could not queue async cipher work");
  }
  return promise;
}
