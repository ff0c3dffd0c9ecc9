/*
 * The send buffer of a socket. A unix stream socket's send buffer is the only queue between
 * its two ends (the receiver has none of its own), and the kernel's default (net.core.wmem_default,
 * usually 208 KiB) is smaller than one large NBD read reply, which then crosses it in several
 * fill-and-drain rounds, each waking both processes. Node has no call to change it.
 * SO_SNDBUFFORCE (CAP_NET_ADMIN) may go beyond net.core.wmem_max; without the capability
 * the request falls back to SO_SNDBUF, which the kernel caps at wmem_max. Either way the
 * kernel doubles the value asked for (its own bookkeeping overhead) and reports the doubled size.
 * JS: setSendBuffer(fd, bytes) -> number: the send buffer the kernel now reports, or -errno.
 * Spec: socket(7) (SO_SNDBUF, SO_SNDBUFFORCE).
 */
#include <errno.h>
#include <sys/socket.h>

#include "socket-buffer.h"

static napi_value set_send_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd, bytes;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_int32(env, argv[1], &bytes) != napi_ok || bytes <= 0) {
    napi_throw_type_error(env, NULL, "setSendBuffer: expected (fd, bytes) with a non-negative descriptor and a positive size");
    return NULL;
  }
  int r = setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes);
  if (r < 0 && errno == EPERM) r = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  int now = 0;
  socklen_t len = sizeof now;
  if (r == 0) r = getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &now, &len);
  napi_value v;
  napi_create_int32(env, r < 0 ? -errno : now, &v);
  return v;
}

napi_status register_socket_buffer(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"setSendBuffer", NULL, set_send_buffer, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
