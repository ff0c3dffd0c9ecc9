/*
 * One writer per local image: flock(LOCK_EX | LOCK_NB) on the image's descriptor, an advisory
 * lock the kernel drops when the descriptor closes (also when the process dies, so there is
 * no stale lock to break). Node has no flock(2). Non-blocking, so it runs on the calling
 * thread.
 * JS: flockExclusive(fd) -> number: 0, or -errno (-EWOULDBLOCK when another open file
 * description holds a lock on the file).
 * Spec: flock(2).
 */
#include <errno.h>
#include <sys/file.h>

#include "file-lock.h"

static napi_value flock_exclusive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "flockExclusive: expected (fd) with a non-negative descriptor");
    return NULL;
  }
  int r;
  do r = flock(fd, LOCK_EX | LOCK_NB);
  while (r < 0 && errno == EINTR);
  napi_value v;
  napi_create_int32(env, r < 0 ? -errno : 0, &v);
  return v;
}

napi_status register_file_lock(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"flockExclusive", NULL, flock_exclusive, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
