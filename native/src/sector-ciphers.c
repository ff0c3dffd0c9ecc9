/*
 * N-API side of the sector ciphers (sector-ciphers.h). A key handle owns the key schedules;
 * they are read-only once made, so any number of pool threads cipher with one handle at once.
 * AES goes through OpenSSL EVP (a context keyed per call, the IV set per sector) so it gets
 * AES-NI; Twofish and Serpent use this addon's own code through sector-modes.c. As in xts.c,
 * OpenSSL comes from the node binary and every request is one call, async on the libuv pool.
 * freeSectorKey wipes the schedules once no call is using them; later calls fail.
 * Spec: dm-crypt IV generators (plain, plain64, essiv); OpenSSL EVP_EncryptInit(3).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "crypt-call.h"
#include "sector-ciphers.h"
#include "sector-modes.h"
#include "serpent.h"
#include "twofish.h"

typedef enum { CIPHER_AES, CIPHER_TWOFISH, CIPHER_SERPENT } cipher_id;

static const block_cipher TWOFISH = {twofish_encrypt_blocks, twofish_decrypt_blocks};
static const block_cipher SERPENT = {serpent_encrypt_blocks, serpent_decrypt_blocks};

typedef struct {
  cipher_id cipher;
  sector_mode mode;
  iv_gen iv;
  /* AES: raw keys, keyed into EVP per call. */
  unsigned char key[64];
  size_t key_len;
  unsigned char iv_key[32];
  const EVP_CIPHER *evp;
  /* Twofish/Serpent: schedules of the data key, the XTS tweak key and the ESSIV key. */
  void *data, *tweak, *essiv;
  size_t sched_size;
  sector_cipher sc;
  pthread_mutex_t mu; /* guards busy and wiped */
  int busy;           /* calls using the keys now */
  int wiped;
  /* Touched only on the JS thread: */
  int inflight;
  int finalized;
} sector_key;

/* Tells our handles apart from xts.c's and from any other external. */
static const napi_type_tag SECTOR_KEY_TAG = {0x6e62646372797074ULL, 0x736563746f726b31ULL};

static void wipe_keys(sector_key *k) {
  OPENSSL_cleanse(k->key, sizeof k->key);
  OPENSSL_cleanse(k->iv_key, sizeof k->iv_key);
  void *scheds[3] = {k->data, k->tweak, k->essiv};
  for (int i = 0; i < 3; i++)
    if (scheds[i]) OPENSSL_cleanse(scheds[i], k->sched_size);
}

static void free_sector_key(sector_key *k) {
  wipe_keys(k);
  free(k->data);
  free(k->tweak);
  free(k->essiv);
  pthread_mutex_destroy(&k->mu);
  free(k);
}

/* Keys one schedule of the block cipher; NULL on a bad length or no memory. */
static void *make_schedule(cipher_id c, const unsigned char *key, size_t len, size_t *size) {
  *size = c == CIPHER_TWOFISH ? sizeof(twofish_key) : sizeof(serpent_key);
  void *s = malloc(*size);
  if (s == NULL) return NULL;
  int ok = c == CIPHER_TWOFISH ? twofish_set_key(s, key, len) : serpent_set_key(s, key, len);
  if (!ok) { free(s); return NULL; }
  return s;
}

static const EVP_CIPHER *aes_evp(sector_mode m, size_t key_len) {
  switch (m) {
    case MODE_XTS: return key_len == 32 ? EVP_aes_128_xts() : key_len == 64 ? EVP_aes_256_xts() : NULL;
    case MODE_CBC: return key_len == 16 ? EVP_aes_128_cbc() : key_len == 24 ? EVP_aes_192_cbc() : key_len == 32 ? EVP_aes_256_cbc() : NULL;
    default: return key_len == 16 ? EVP_aes_128_ecb() : key_len == 24 ? EVP_aes_192_ecb() : key_len == 32 ? EVP_aes_256_ecb() : NULL;
  }
}

static void openssl_error(char *err, size_t errn, const char *what) {
  unsigned long e = ERR_get_error();
  char reason[160] = "unknown error";
  if (e != 0) ERR_error_string_n(e, reason, sizeof reason);
  ERR_clear_error();
  snprintf(err, errn, "%s: %s", what, reason);
}

/* AES through EVP: one keyed context per call, the IV set per sector. */
static int aes_crypt(const sector_key *k, int enc, const unsigned char *src, unsigned char *dst, size_t len, uint64_t first, size_t ss,
                     char *err, size_t errn) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new(), *e = NULL;
  int ok = c != NULL && EVP_CipherInit_ex(c, k->evp, NULL, k->key, NULL, enc) == 1 && EVP_CIPHER_CTX_set_padding(c, 0) == 1;
  if (ok && k->iv == IV_ESSIV) {
    e = EVP_CIPHER_CTX_new();
    ok = e != NULL && EVP_EncryptInit_ex(e, EVP_aes_256_ecb(), NULL, k->iv_key, NULL) == 1 && EVP_CIPHER_CTX_set_padding(e, 0) == 1;
  }
  int outl = 0;
  if (ok && k->mode == MODE_ECB) {
    ok = EVP_CipherUpdate(c, dst, &outl, src, (int)len) == 1 && (size_t)outl == len;
  } else {
    const uint64_t step = ss / 512;
    unsigned char iv[16];
    for (size_t off = 0; ok && off < len; off += ss, first += step) {
      sector_iv_base(k->iv, first, iv);
      if (k->iv == IV_ESSIV) ok = EVP_EncryptUpdate(e, iv, &outl, iv, 16) == 1 && outl == 16;
      ok = ok && EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, -1) == 1 && EVP_CipherUpdate(c, dst + off, &outl, src + off, (int)ss) == 1 &&
           (size_t)outl == ss;
    }
    OPENSSL_cleanse(iv, sizeof iv);
  }
  if (!ok) openssl_error(err, errn, "sector cipher (native engine): OpenSSL AES failed");
  EVP_CIPHER_CTX_free(c);
  EVP_CIPHER_CTX_free(e);
  return ok;
}

static int crypt_now(sector_key *k, int enc, const unsigned char *src, unsigned char *dst, size_t len, uint64_t first, size_t ss, char *err,
                     size_t errn) {
  pthread_mutex_lock(&k->mu);
  int wiped = k->wiped;
  if (!wiped) k->busy++;
  pthread_mutex_unlock(&k->mu);
  if (wiped) {
    snprintf(err, errn, "sector cipher (native engine): key already destroyed");
    return 0;
  }
  int ok = 1;
  if (len > 0) {
    if (k->cipher == CIPHER_AES) ok = aes_crypt(k, enc, src, dst, len, first, ss, err, errn);
    else sector_crypt(&k->sc, enc, src, dst, len, first, ss);
  }
  pthread_mutex_lock(&k->mu);
  if (--k->busy == 0 && k->wiped) wipe_keys(k);
  pthread_mutex_unlock(&k->mu);
  return ok;
}

/* ---- exports ---- */

#define THROW(env, kind, msg) do { napi_throw_##kind((env), NULL, (msg)); return NULL; } while (0)
#define CHECK_NAPI(env, call) do { if ((call) != napi_ok) THROW(env, error, "nbdcrypt sector cipher: N-API call failed: " #call); } while (0)

bool is_sector_key(napi_env env, napi_value v) {
  napi_valuetype t;
  bool tagged = false;
  return napi_typeof(env, v, &t) == napi_ok && t == napi_external && napi_check_object_type_tag(env, v, &SECTOR_KEY_TAG, &tagged) == napi_ok && tagged;
}

static sector_key *get_sector_key(napi_env env, napi_value v) { return is_sector_key(env, v) ? get_external(env, v) : NULL; }

static void finalize_key(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  sector_key *k = data;
  k->finalized = 1;
  if (k->inflight == 0) free_sector_key(k);
}

static int get_word(napi_env env, napi_value v, char *buf, size_t n) {
  size_t len;
  return napi_get_value_string_utf8(env, v, buf, n, &len) == napi_ok && len < n - 1;
}

/*
 * newSectorKey(cipher, mode, ivgen, key, ivKey | null) -> handle. cipher: aes | twofish |
 * serpent; mode: xts | cbc | ecb; ivgen: plain64 | plain | essiv | none; key: the whole volume
 * key (XTS: data half then tweak half); ivKey: the ESSIV key (the hash of the volume key).
 */
static napi_value new_sector_key(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) THROW(env, type_error, "newSectorKey: expected (cipher, mode, ivgen, key, ivKey)");
  char cipher[16], mode[8], iv[16];
  if (!get_word(env, argv[0], cipher, sizeof cipher) || !get_word(env, argv[1], mode, sizeof mode) || !get_word(env, argv[2], iv, sizeof iv))
    THROW(env, type_error, "newSectorKey: cipher, mode and ivgen must be short strings");
  unsigned char *key, *iv_key = NULL;
  size_t key_len, iv_key_len = 0;
  if (!get_bytes(env, argv[3], &key, &key_len)) THROW(env, type_error, "key must be a Buffer");
  napi_valuetype t;
  CHECK_NAPI(env, napi_typeof(env, argv[4], &t));
  if (t != napi_null && t != napi_undefined && !get_bytes(env, argv[4], &iv_key, &iv_key_len)) THROW(env, type_error, "ivKey must be a Buffer or null");

  sector_key *k = calloc(1, sizeof *k);
  if (k == NULL) THROW(env, error, "nbdcrypt sector cipher: out of memory");
  pthread_mutex_init(&k->mu, NULL);
  const char *bad = NULL;
  k->cipher = !strcmp(cipher, "aes") ? CIPHER_AES : !strcmp(cipher, "twofish") ? CIPHER_TWOFISH : !strcmp(cipher, "serpent") ? CIPHER_SERPENT : (bad = "cipher", 0);
  k->mode = !strcmp(mode, "xts") ? MODE_XTS : !strcmp(mode, "cbc") ? MODE_CBC : !strcmp(mode, "ecb") ? MODE_ECB : (bad = "mode", 0);
  k->iv = !strcmp(iv, "plain64") ? IV_PLAIN64 : !strcmp(iv, "plain") ? IV_PLAIN : !strcmp(iv, "essiv") ? IV_ESSIV : !strcmp(iv, "none") ? IV_NONE : (bad = "ivgen", 0);
  if (!bad && (k->mode == MODE_ECB) != (k->iv == IV_NONE)) bad = "ivgen (ecb takes none, the other modes an IV)";
  if (!bad && (k->iv == IV_ESSIV) != (iv_key != NULL)) bad = "ivKey (given exactly for essiv)";
  if (!bad && iv_key != NULL && iv_key_len != 32) bad = "ivKey length (32 bytes)";
  if (!bad && (key_len > sizeof k->key || (k->mode == MODE_XTS && key_len % 2 != 0))) bad = "key length";
  if (!bad && k->cipher == CIPHER_AES) {
    if ((k->evp = aes_evp(k->mode, key_len)) == NULL) bad = "key length for AES in this mode";
    memcpy(k->key, key, key_len);
    k->key_len = key_len;
    if (iv_key) memcpy(k->iv_key, iv_key, 32);
  } else if (!bad) {
    size_t half = k->mode == MODE_XTS ? key_len / 2 : key_len;
    k->sc.bc = k->cipher == CIPHER_TWOFISH ? &TWOFISH : &SERPENT;
    k->sc.mode = k->mode;
    k->sc.iv = k->iv;
    k->sc.data = k->data = make_schedule(k->cipher, key, half, &k->sched_size);
    if (k->data == NULL) bad = "key length (16, 24 or 32 bytes per key)";
    if (!bad && k->mode == MODE_XTS && (k->sc.tweak = k->tweak = make_schedule(k->cipher, key + half, half, &k->sched_size)) == NULL) bad = "key";
    if (!bad && iv_key && (k->sc.essiv = k->essiv = make_schedule(k->cipher, iv_key, 32, &k->sched_size)) == NULL) bad = "key";
  }
  if (bad) {
    char msg[120];
    snprintf(msg, sizeof msg, "newSectorKey: unsupported %s", bad);
    free_sector_key(k);
    THROW(env, range_error, msg);
  }
  napi_value out;
  if (napi_create_external(env, k, finalize_key, NULL, &out) != napi_ok) {
    free_sector_key(k);
    THROW(env, error, "nbdcrypt sector cipher: napi_create_external failed");
  }
  CHECK_NAPI(env, napi_type_tag_object(env, out, &SECTOR_KEY_TAG));
  return out;
}

/* freeSectorKey(handle): wipes the keys now, or when the calls using them return. */
static napi_value free_sector_key_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sector_key *k = argc >= 1 ? get_sector_key(env, argv[0]) : NULL;
  if (k == NULL) THROW(env, type_error, "key handle must come from newSectorKey()");
  pthread_mutex_lock(&k->mu);
  k->wiped = 1;
  if (k->busy == 0) wipe_keys(k);
  pthread_mutex_unlock(&k->mu);
  return NULL;
}

/* The shared sync/async call paths (crypt-call.c) over this file's keys. */
static int sector_run(void *k, const call_args *a, char *err, size_t errn) {
  return crypt_now(k, a->enc, a->src, a->dst, a->len, a->first, a->ss, err, errn);
}
static void sector_hold(void *k) { ((sector_key *)k)->inflight++; }
static void sector_release(void *k) {
  sector_key *s = k;
  if (--s->inflight == 0 && s->finalized) free_sector_key(s);
}
static const crypt_family SECTOR = {true, "sector cipher (native engine)", sector_run, sector_hold, sector_release};

/* sectorCryptSync(handle, encrypt, src, dst, firstSector, sectorSize) */
static napi_value crypt_sync(napi_env env, napi_callback_info info) { return crypt_call_sync(env, info, &SECTOR); }
/* sectorCryptAsync(handle, encrypt, src, dst, firstSector, sectorSize) -> Promise<void> */
static napi_value crypt_async(napi_env env, napi_callback_info info) { return crypt_call_async(env, info, &SECTOR); }

napi_status register_sector_ciphers(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"newSectorKey", NULL, new_sector_key, NULL, NULL, NULL, napi_default, NULL},
    {"freeSectorKey", NULL, free_sector_key_js, NULL, NULL, NULL, napi_default, NULL},
    {"sectorCryptSync", NULL, crypt_sync, NULL, NULL, NULL, napi_default, NULL},
    {"sectorCryptAsync", NULL, crypt_async, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
