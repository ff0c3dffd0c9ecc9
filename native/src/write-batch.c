/*
 * Many positional writes in one trip to the libuv thread pool. Node's fs.write costs a pool
 * round trip per call (queue, wake a worker, wake the event loop), which for 4 KiB writes costs
 * more than the pwrite itself (figures: docs/performance.md, File target). FileDevice gathers
 * the writes of one event-loop turn and hands them here as one batch, written in order by one
 * worker.
 * JS: pwriteBatch(fd, buffers: Uint8Array[], offsets: number[]) -> Promise<number[]>, one entry
 * per write: bytes written (possibly short) or -errno. The buffers stay referenced (through the
 * array) until the promise settles.
 * Spec: pwrite(2); the pool job: pool-job.h.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "pool-job.h"
#include "write-batch.h"

typedef struct {
  const uint8_t *data;
  size_t length;
  off_t offset;
  double result;
} one_write;

typedef struct {
  int fd;
  size_t count;
  one_write *writes;
  napi_ref keep; /* the buffers array, so no buffer is collected meanwhile */
  pool_job job;
} batch;

static void execute(napi_env env, void *p) {
  (void)env;
  batch *b = p;
  for (size_t i = 0; i < b->count; i++) {
    one_write *w = &b->writes[i];
    ssize_t r;
    do r = pwrite(b->fd, w->data, w->length, w->offset);
    while (r < 0 && errno == EINTR);
    w->result = r < 0 ? -(double)errno : (double)r;
  }
}

static void complete(napi_env env, napi_status status, void *p) {
  batch *b = p;
  napi_value results;
  napi_create_array_with_length(env, b->count, &results);
  for (size_t i = 0; i < b->count; i++) {
    napi_value v;
    napi_create_double(env, status == napi_ok ? b->writes[i].result : -(double)ECANCELED, &v);
    napi_set_element(env, results, (uint32_t)i, v);
  }
  pool_job_settle(env, &b->job, true, results);
  napi_delete_reference(env, b->keep);
  free(b->writes);
  free(b);
}

static napi_value fail(napi_env env, batch *b, const char *msg) {
  if (b) {
    free(b->writes);
    free(b);
  }
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value pwrite_batch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  uint32_t n, n_offsets;
  bool is_array;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[1], &n) != napi_ok ||
      napi_get_array_length(env, argv[2], &n_offsets) != napi_ok || n != n_offsets || n == 0)
    return fail(env, NULL, "pwriteBatch: expected (fd, buffers[], offsets[]) of the same non-zero length");
  batch *b = calloc(1, sizeof *b);
  if (!b || !(b->writes = calloc(n, sizeof *b->writes))) return fail(env, b, "pwriteBatch: out of memory");
  b->fd = fd;
  b->count = n;
  for (uint32_t i = 0; i < n; i++) {
    napi_value buf, off;
    napi_typedarray_type type;
    size_t length;
    void *data;
    double offset;
    if (napi_get_element(env, argv[1], i, &buf) != napi_ok || napi_get_element(env, argv[2], i, &off) != napi_ok ||
        napi_is_typedarray(env, buf, &is_array) != napi_ok || !is_array ||
        napi_get_typedarray_info(env, buf, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array ||
        napi_get_value_double(env, off, &offset) != napi_ok || offset < 0 || offset > JS_MAX_SAFE_INTEGER)
      return fail(env, b, "pwriteBatch: each write needs a Uint8Array and a non-negative safe-integer offset");
    b->writes[i] = (one_write){.data = data, .length = length, .offset = (off_t)offset};
  }
  if (napi_create_reference(env, argv[1], 1, &b->keep) != napi_ok) return fail(env, b, "pwriteBatch: N-API call failed");
  napi_value promise = pool_job_start(env, &b->job, "nbdcrypt.pwriteBatch", execute, complete, b);
  if (!promise) {
    napi_delete_reference(env, b->keep);
    return fail(env, b, "pwriteBatch: N-API call failed");
  }
  return promise;
}

napi_status register_write_batch(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"pwriteBatch", NULL, pwrite_batch, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
