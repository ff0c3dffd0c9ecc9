/*
 * nbdcrypt_xts: batched aes-xts-plain64 for nbdcrypt (src/crypt/native-engine.ts).
 *
 * One call encrypts or decrypts a whole buffer of consecutive sectors: per sector only the
 * IV is set on an already keyed OpenSSL EVP context, so the per-call cost of node:crypto
 * (a new cipher object per sector) disappears. Tweak of sector i is
 * LE64(firstSector + i * sectorSize / 512) || 8 zero bytes (LUKS2 plain64, 512-byte units;
 * docs/formats.md). The async variant runs on the libuv thread pool. A key owns a small
 * pool of keyed contexts (one per concurrent caller), because an EVP context must not be used
 * by two threads at once. OpenSSL is not linked: the symbols come from the node binary, which
 * exports its bundled OpenSSL, and the headers from Node's own include directory.
 * Speed: with 512-byte sectors the EVP wrappers (EVP_CipherInit_ex + EVP_CipherUpdate) cost
 * about as much as the AES itself, so the hot loop calls the provider's own AES-256-XTS
 * init/cipher functions, taken from its public dispatch table (OSSL_PROVIDER_query_operation,
 * core_dispatch.h) — the same functions EVP calls. If that table cannot be found, the EVP
 * path is used; both give the same bytes.
 * The same addon carries setIoFlusher (below), the page-cache reads of page-cache-io.c, the
 * batched writes of write-batch.c, the hole punching of punch-hole.c, the image lock of
 * file-lock.c and the other ciphers and modes of sector-ciphers.c, so there is one native
 * build.
 * Spec: IEEE Std 1619-2018; OpenSSL EVP_EncryptInit(3).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <node_api.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "crypt-call.h"
#include "sector-ciphers.h"
#include "page-cache-io.h"
#include "write-batch.h"
#include "punch-hole.h"
#include "file-lock.h"
#include "netlink.h"
#include "socket-buffer.h"
#include "pool-job.h"

#ifdef __linux__
#include <sys/prctl.h>
#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif
#endif

#define KEY_BYTES 64
#define POOL_MAX 16 /* idle contexts kept per direction; more callers just make (and free) more */

/* The provider's AES-256-XTS functions (looked up once) — the fast path. */
static struct {
  OSSL_FUNC_cipher_newctx_fn *newctx;
  OSSL_FUNC_cipher_freectx_fn *freectx;
  OSSL_FUNC_cipher_encrypt_init_fn *einit;
  OSSL_FUNC_cipher_decrypt_init_fn *dinit;
  OSSL_FUNC_cipher_cipher_fn *cipher;
  void *provctx;
  int ready;
} prov;
static const EVP_CIPHER *evp_xts; /* the EVP fallback */
static pthread_once_t lookup_once = PTHREAD_ONCE_INIT;

static int name_is(const char *names, const char *want) {
  size_t n = strlen(want);
  for (const char *p = names; p != NULL && *p; p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL) {
    if (strncasecmp(p, want, n) == 0 && (p[n] == ':' || p[n] == '\0')) return 1;
  }
  return 0;
}

static void lookup_xts(void) {
  evp_xts = EVP_aes_256_xts();
  if (getenv("NBDCRYPT_NATIVE_EVP") != NULL) return; /* force the EVP path (tests, benchmarks) */
  EVP_CIPHER *fetched = EVP_CIPHER_fetch(NULL, "AES-256-XTS", NULL);
  if (fetched == NULL) { ERR_clear_error(); return; }
  const OSSL_PROVIDER *p = EVP_CIPHER_get0_provider(fetched);
  int no_cache = 0;
  const OSSL_ALGORITHM *algs = p ? OSSL_PROVIDER_query_operation(p, OSSL_OP_CIPHER, &no_cache) : NULL;
  for (const OSSL_ALGORITHM *a = algs; a != NULL && a->algorithm_names != NULL; a++) {
    if (!name_is(a->algorithm_names, "AES-256-XTS")) continue;
    for (const OSSL_DISPATCH *f = a->implementation; f->function_id != 0; f++) {
      switch (f->function_id) {
        case OSSL_FUNC_CIPHER_NEWCTX: prov.newctx = OSSL_FUNC_cipher_newctx(f); break;
        case OSSL_FUNC_CIPHER_FREECTX: prov.freectx = OSSL_FUNC_cipher_freectx(f); break;
        case OSSL_FUNC_CIPHER_ENCRYPT_INIT: prov.einit = OSSL_FUNC_cipher_encrypt_init(f); break;
        case OSSL_FUNC_CIPHER_DECRYPT_INIT: prov.dinit = OSSL_FUNC_cipher_decrypt_init(f); break;
        case OSSL_FUNC_CIPHER_CIPHER: prov.cipher = OSSL_FUNC_cipher_cipher(f); break;
        default: break;
      }
    }
    break;
  }
  prov.provctx = p ? OSSL_PROVIDER_get0_provider_ctx(p) : NULL;
  prov.ready = prov.newctx && prov.freectx && prov.einit && prov.dinit && prov.cipher && prov.provctx;
  if (algs != NULL) OSSL_PROVIDER_unquery_operation(p, OSSL_OP_CIPHER, algs);
  /* `fetched` stays referenced on purpose: it keeps the provider (and prov.*) loaded. */
  ERR_clear_error();
}

/* A keyed context of either path. */
typedef void xts_ctx;

static xts_ctx *ctx_new(const unsigned char *key, int enc) {
  if (prov.ready) {
    void *c = prov.newctx(prov.provctx);
    if (c == NULL) return NULL;
    if ((enc ? prov.einit : prov.dinit)(c, key, KEY_BYTES, NULL, 0, NULL) != 1) { prov.freectx(c); return NULL; }
    return c;
  }
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  if (c == NULL) return NULL;
  if (EVP_CipherInit_ex(c, evp_xts, NULL, key, NULL, enc) != 1) { EVP_CIPHER_CTX_free(c); return NULL; }
  return c;
}

/* Frees a context; both paths clear the key schedule (OPENSSL_clear_free in the provider). */
static void ctx_free(xts_ctx *c) {
  if (c == NULL) return;
  if (prov.ready) prov.freectx(c);
  else EVP_CIPHER_CTX_free(c);
}

/* One sector: set the IV on a keyed context and run the whole data unit. */
static inline int ctx_unit(xts_ctx *c, int enc, const unsigned char iv[16], const unsigned char *in,
                           unsigned char *out, size_t n) {
  if (prov.ready) {
    size_t outl = 0;
    return (enc ? prov.einit : prov.dinit)(c, NULL, 0, iv, 16, NULL) == 1 &&
           prov.cipher(c, out, &outl, n, in, n) == 1 && outl == n;
  }
  int outl = 0;
  return EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, -1) == 1 &&
         EVP_CipherUpdate(c, out, &outl, in, (int)n) == 1 && (size_t)outl == n;
}

typedef struct {
  unsigned char key[KEY_BYTES];
  pthread_mutex_t mu;           /* guards the pools, the key and `wiped` */
  xts_ctx *pool[2][POOL_MAX];   /* idle keyed contexts: [0] decrypt, [1] encrypt */
  int npool[2];
  int wiped;                    /* freeKey() called: no new contexts */
  /* Touched only on the JS thread: */
  int inflight;                 /* async calls not yet completed */
  int finalized;                /* the JS handle was garbage-collected */
} xts_key;

/* Drops every idle context and wipes the key copy. Caller holds k->mu. */
static void wipe_locked(xts_key *k) {
  for (int d = 0; d < 2; d++) {
    for (int i = 0; i < k->npool[d]; i++) ctx_free(k->pool[d][i]);
    k->npool[d] = 0;
  }
  OPENSSL_cleanse(k->key, sizeof k->key);
  k->wiped = 1;
}

static void free_key(xts_key *k) {
  pthread_mutex_lock(&k->mu);
  wipe_locked(k);
  pthread_mutex_unlock(&k->mu);
  pthread_mutex_destroy(&k->mu);
  free(k);
}

static void last_openssl_error(char *buf, size_t n, const char *what) {
  unsigned long e = ERR_get_error();
  char reason[160] = "unknown error";
  if (e != 0) ERR_error_string_n(e, reason, sizeof reason);
  ERR_clear_error();
  snprintf(buf, n, "%s: %s", what, reason);
}

/* A keyed context for direction `enc`, from the pool or new; NULL with `err` set on failure. */
static xts_ctx *take_ctx(xts_key *k, int enc, char *err, size_t errn) {
  xts_ctx *ctx = NULL;
  pthread_mutex_lock(&k->mu);
  if (k->wiped) {
    snprintf(err, errn, "xts cipher (native engine): key already destroyed");
  } else if (k->npool[enc] > 0) {
    ctx = k->pool[enc][--k->npool[enc]];
  } else if ((ctx = ctx_new(k->key, enc)) == NULL) {
    last_openssl_error(err, errn, "xts cipher (native engine): keying OpenSSL aes-256-xts failed");
  }
  pthread_mutex_unlock(&k->mu);
  return ctx;
}

static void give_ctx(xts_key *k, int enc, xts_ctx *ctx) {
  pthread_mutex_lock(&k->mu);
  if (!k->wiped && k->npool[enc] < POOL_MAX) {
    k->pool[enc][k->npool[enc]++] = ctx;
    ctx = NULL;
  }
  pthread_mutex_unlock(&k->mu);
  ctx_free(ctx);
}

/* The hot loop: one IV set + one data unit per sector on a keyed context. */
static int run_xts(xts_ctx *ctx, int enc, const unsigned char *src, unsigned char *dst, size_t len,
                   uint64_t first, size_t ss, char *err, size_t errn) {
  unsigned char iv[16] = {0};
  const uint64_t step = ss / 512;
  for (size_t off = 0; off < len; off += ss, first += step) {
    for (int b = 0; b < 8; b++) iv[b] = (unsigned char)(first >> (8 * b));
    if (!ctx_unit(ctx, enc, iv, src + off, dst + off, ss)) {
      last_openssl_error(err, errn, "xts cipher (native engine): OpenSSL aes-256-xts failed");
      return 0;
    }
  }
  return 1;
}

static int crypt_now(xts_key *k, int enc, const unsigned char *src, unsigned char *dst, size_t len,
                     uint64_t first, size_t ss, char *err, size_t errn) {
  if (len == 0) return 1;
  xts_ctx *ctx = take_ctx(k, enc, err, errn);
  if (ctx == NULL) return 0;
  int ok = run_xts(ctx, enc, src, dst, len, first, ss, err, errn);
  give_ctx(k, enc, ctx);
  return ok;
}

/* ---- exports (argument parsing and the call paths: crypt-call.c) ---- */

#define THROW(env, kind, msg) do { napi_throw_##kind((env), NULL, (msg)); return NULL; } while (0)
#define CHECK_NAPI(env, call) do { if ((call) != napi_ok) THROW(env, error, "nbdcrypt_xts: N-API call failed: " #call); } while (0)

/* Our key handle, and not one of sector-ciphers.c (both are externals). */
static xts_key *get_key(napi_env env, napi_value v) { return is_sector_key(env, v) ? NULL : get_external(env, v); }

/* ---- exports ---- */

static void finalize_key(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  xts_key *k = data;
  k->finalized = 1;
  if (k->inflight == 0) free_key(k);
}

/* newKey(key: Uint8Array(64)) -> external handle */
static napi_value new_key(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  unsigned char *key;
  size_t len;
  if (argc < 1 || !get_bytes(env, argv[0], &key, &len)) THROW(env, type_error, "key must be a Buffer");
  if (len != KEY_BYTES) THROW(env, range_error, "key must be 64 bytes (AES-256-XTS)");
  xts_key *k = calloc(1, sizeof *k);
  if (k == NULL) THROW(env, error, "nbdcrypt_xts: out of memory");
  memcpy(k->key, key, KEY_BYTES);
  pthread_mutex_init(&k->mu, NULL);
  /* Key one encrypt and one decrypt context now, so a bad key fails here and not mid-I/O. */
  char err[256];
  for (int enc = 0; enc < 2; enc++) {
    xts_ctx *ctx = take_ctx(k, enc, err, sizeof err);
    if (ctx == NULL) {
      free_key(k);
      THROW(env, range_error, err);
    }
    give_ctx(k, enc, ctx);
  }
  napi_value out;
  if (napi_create_external(env, k, finalize_key, NULL, &out) != napi_ok) {
    free_key(k);
    THROW(env, error, "nbdcrypt_xts: napi_create_external failed");
  }
  return out;
}

/* freeKey(handle): wipes the key and idle contexts now; busy contexts are freed on return. */
static napi_value free_key_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  xts_key *k = argc >= 1 ? get_key(env, argv[0]) : NULL;
  if (k == NULL) THROW(env, type_error, "key handle must come from newKey()");
  pthread_mutex_lock(&k->mu);
  wipe_locked(k);
  pthread_mutex_unlock(&k->mu);
  return NULL;
}

/* The shared sync/async call paths (crypt-call.c) over this file's keys. */
static int xts_run(void *k, const call_args *a, char *err, size_t errn) {
  return crypt_now(k, a->enc, a->src, a->dst, a->len, a->first, a->ss, err, errn);
}
static void xts_hold(void *k) { ((xts_key *)k)->inflight++; }
static void xts_release(void *k) {
  xts_key *x = k;
  if (--x->inflight == 0 && x->finalized) free_key(x);
}
static const crypt_family XTS = {false, "xts cipher (native engine)", xts_run, xts_hold, xts_release};

/* cryptSync(handle, encrypt, src, dst, firstSector, sectorSize) */
static napi_value crypt_sync(napi_env env, napi_callback_info info) { return crypt_call_sync(env, info, &XTS); }
/* cryptAsync(handle, encrypt, src, dst, firstSector, sectorSize) -> Promise<void> */
static napi_value crypt_async(napi_env env, napi_callback_info info) { return crypt_call_async(env, info, &XTS); }

/* setIoFlusher() -> undefined on success, else "ENAME: message". */
static napi_value set_io_flusher(napi_env env, napi_callback_info info) {
  (void)info;
  char msg[160];
#ifdef __linux__
  if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == 0) return NULL;
  int e = errno;
  const char *name = e == EPERM ? "EPERM" : e == EINVAL ? "EINVAL" : "errno";
  snprintf(msg, sizeof msg, "%s: prctl(PR_SET_IO_FLUSHER) failed: %s%s", name, strerror(e),
           e == EPERM ? " (needs CAP_SYS_RESOURCE)" : e == EINVAL ? " (needs Linux 5.6 or later)" : "");
#else
  snprintf(msg, sizeof msg, "ENOSYS: PR_SET_IO_FLUSHER exists only on Linux");
#endif
  napi_value out;
  CHECK_NAPI(env, napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value openssl_version(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  CHECK_NAPI(env, napi_create_string_utf8(env, OpenSSL_version(OPENSSL_VERSION), NAPI_AUTO_LENGTH, &out));
  return out;
}

/* path() -> "provider" (fast path) or "evp" (fallback): which loop this process uses. */
static napi_value path_js(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  CHECK_NAPI(env, napi_create_string_utf8(env, prov.ready ? "provider" : "evp", NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  pthread_once(&lookup_once, lookup_xts);
  napi_property_descriptor props[] = {
    {"newKey", NULL, new_key, NULL, NULL, NULL, napi_default, NULL},
    {"freeKey", NULL, free_key_js, NULL, NULL, NULL, napi_default, NULL},
    {"cryptSync", NULL, crypt_sync, NULL, NULL, NULL, napi_default, NULL},
    {"cryptAsync", NULL, crypt_async, NULL, NULL, NULL, napi_default, NULL},
    {"setIoFlusher", NULL, set_io_flusher, NULL, NULL, NULL, napi_default, NULL},
    {"opensslVersion", NULL, openssl_version, NULL, NULL, NULL, napi_default, NULL},
    {"path", NULL, path_js, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  if (register_sector_ciphers(env, exports) != napi_ok) return NULL;
  if (register_page_cache_io(env, exports) != napi_ok) return NULL;
  if (register_write_batch(env, exports) != napi_ok) return NULL;
  if (register_punch_hole(env, exports) != napi_ok) return NULL;
  if (register_file_lock(env, exports) != napi_ok) return NULL;
  if (register_netlink(env, exports) != napi_ok) return NULL;
  if (register_socket_buffer(env, exports) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
