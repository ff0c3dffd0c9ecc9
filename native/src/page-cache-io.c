/*
 * Positional file I/O that never blocks: preadv2/pwritev2 with RWF_NOWAIT (Linux 4.14+ for
 * reads; buffered writes on ext4/xfs/btrfs in later kernels). Data already in the page cache
 * is copied at once, on the calling (event-loop) thread; anything that would wait for the disk
 * (or a lock, or writeback) returns EAGAIN instead, and FileDevice then hands the request to
 * the libuv thread pool as before. A 4 KiB read served this way costs one syscall instead of a
 * thread-pool round trip (two thread wake-ups), the dominant cost of random 4 KiB reads.
 * JS: preadNoWait(fd, buf, offset) and pwriteNoWait(fd, buf, offset) return the bytes moved
 * (possibly fewer than asked) or -errno (-EAGAIN: not without waiting; -EOPNOTSUPP/-ENOSYS:
 * the kernel or filesystem lacks RWF_NOWAIT). They never throw for I/O errors: the caller
 * retries on the thread pool, whose error reporting is Node's own.
 * Spec: preadv2(2).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/uio.h>

#include "page-cache-io.h"
#include "pool-job.h"

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

typedef ssize_t (*io_fn)(int, const struct iovec *, int, off_t, int);

static ssize_t do_read(int fd, const struct iovec *iov, int n, off_t off, int flags) { return preadv2(fd, iov, n, off, flags); }
static ssize_t do_write(int fd, const struct iovec *iov, int n, off_t off, int flags) { return pwritev2(fd, iov, n, off, flags); }

/* Parses (fd, Uint8Array, offset) and runs `fn` once; returns a JS number, or NULL after throwing a TypeError. */
static napi_value nowait(napi_env env, napi_callback_info info, io_fn fn) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3) {
    napi_throw_type_error(env, NULL, "page-cache io: expected (fd, buffer, offset)");
    return NULL;
  }
  int32_t fd;
  double offset;
  bool is_array;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_double(env, argv[2], &offset) != napi_ok ||
      napi_is_typedarray(env, argv[1], &is_array) != napi_ok || !is_array || fd < 0 || offset < 0 || offset > JS_MAX_SAFE_INTEGER) {
    napi_throw_type_error(env, NULL, "page-cache io: expected a descriptor, a Uint8Array and a non-negative safe-integer offset");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "page-cache io: the buffer must be a Uint8Array");
    return NULL;
  }
  struct iovec iov = {.iov_base = data, .iov_len = length};
  ssize_t r;
  do r = fn(fd, &iov, 1, (off_t)offset, RWF_NOWAIT);
  while (r < 0 && errno == EINTR);
  napi_value out;
  napi_create_double(env, r < 0 ? -(double)errno : (double)r, &out);
  return out;
}

static napi_value pread_nowait(napi_env env, napi_callback_info info) { return nowait(env, info, do_read); }
static napi_value pwrite_nowait(napi_env env, napi_callback_info info) { return nowait(env, info, do_write); }

/* fadviseRandom(fd) -> 0, or -errno: posix_fadvise(POSIX_FADV_RANDOM) over the whole file. */
static napi_value fadvise_random(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "fadviseRandom: expected a file descriptor");
    return NULL;
  }
  int r = posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
  napi_value out;
  napi_create_int32(env, -r, &out);
  return out;
}

napi_status register_page_cache_io(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"preadNoWait", NULL, pread_nowait, NULL, NULL, NULL, napi_default, NULL},
    {"pwriteNoWait", NULL, pwrite_nowait, NULL, NULL, NULL, napi_default, NULL},
    {"fadviseRandom", NULL, fadvise_random, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
