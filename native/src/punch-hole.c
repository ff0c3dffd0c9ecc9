/*
 * TRIM for a file target: fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) on the libuv
 * thread pool, so a discarded range of a sparse image gives its blocks back to the filesystem
 * (as cryptsetup --allow-discards over a loop device does) and reads back as zeroes. Node has
 * no fallocate(2).
 * JS: punchHole(fd, offset, length) -> Promise<number>: 0, or -errno (-EOPNOTSUPP where the
 * filesystem cannot punch holes).
 * Spec: fallocate(2); the pool job: pool-job.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

#include "pool-job.h"
#include "punch-hole.h"

typedef struct {
  int fd;
  off_t offset;
  off_t length;
  int result;
  pool_job job;
} punch;

static void execute(napi_env env, void *p) {
  (void)env;
  punch *h = p;
  int r;
  do r = fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, h->offset, h->length);
  while (r < 0 && errno == EINTR);
  h->result = r < 0 ? -errno : 0;
}

static void complete(napi_env env, napi_status status, void *p) {
  punch *h = p;
  napi_value v;
  napi_create_int32(env, status == napi_ok ? h->result : -ECANCELED, &v);
  pool_job_settle(env, &h->job, true, v);
  free(h);
}

static napi_value punch_hole(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  double offset, length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_double(env, argv[1], &offset) != napi_ok || napi_get_value_double(env, argv[2], &length) != napi_ok || offset < 0 ||
      length <= 0 || offset + length > JS_MAX_SAFE_INTEGER) {
    napi_throw_type_error(env, NULL, "punchHole: expected (fd, offset, length) with a non-negative offset and a positive length");
    return NULL;
  }
  punch *h = calloc(1, sizeof *h);
  if (!h) {
    napi_throw_error(env, NULL, "punchHole: out of memory");
    return NULL;
  }
  *h = (punch){.fd = fd, .offset = (off_t)offset, .length = (off_t)length};
  napi_value promise = pool_job_start(env, &h->job, "nbdcrypt.punchHole", execute, complete, h);
  if (!promise) {
    free(h);
    napi_throw_error(env, NULL, "punchHole: N-API call failed");
    return NULL;
  }
  return promise;
}

napi_status register_punch_hole(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"punchHole", NULL, punch_hole, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
