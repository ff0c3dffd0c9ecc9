/*
 * The few socket calls Node cannot make: a generic-netlink socket (to configure the kernel's
 * nbd driver), a connected AF_UNIX stream pair (one end for the kernel, one for our NBD
 * server), and one datagram to a unix socket (the service manager's notify socket). Message
 * encoding and decoding stay in TypeScript (src/attach/netlink-message.ts); these functions
 * only move bytes, synchronously: each netlink exchange is a few hundred bytes and the kernel
 * answers it without waiting on this process.
 * JS: netlinkSocket() -> fd; netlinkSend(fd, bytes) -> bytes sent; netlinkRecv(fd) -> Buffer
 *     (one datagram; throws on timeout); socketPair() -> [fd, fd];
 *     unixDatagram(path, bytes) -> 0 or -errno ('@' at the start names an abstract socket).
 * Every function throws an Error whose message starts with the errno name on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "netlink.h"

/* The kernel answers within milliseconds; a bound keeps a wedged kernel from freezing us. */
#define RECV_TIMEOUT_S 10
#define RECV_MAX 65536

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s failed: %s", strerrorname_np(err) ? strerrorname_np(err) : "EIO", what, strerror(err));
  napi_throw_error(env, strerrorname_np(err), msg);
  return NULL;
}

static napi_value int_value(napi_env env, int v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

static napi_value netlink_socket(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
  if (fd < 0) return throw_errno(env, "socket(AF_NETLINK)", errno);
  struct timeval tv = {.tv_sec = RECV_TIMEOUT_S};
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 || bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind(AF_NETLINK)", err);
  }
  return int_value(env, fd);
}

static int fd_and_bytes(napi_env env, napi_callback_info info, int32_t *fd, void **data, size_t *len) {
  size_t argc = 2;
  napi_value argv[2];
  bool typed = false;
  napi_typedarray_type type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 || napi_get_value_int32(env, argv[0], fd) != napi_ok ||
      napi_is_typedarray(env, argv[1], &typed) != napi_ok || !typed ||
      napi_get_typedarray_info(env, argv[1], &type, len, data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    return -1;
  }
  return 0;
}

static napi_value netlink_send(napi_env env, napi_callback_info info) {
  int32_t fd;
  void *data;
  size_t len;
  if (fd_and_bytes(env, info, &fd, &data, &len) < 0) {
    napi_throw_type_error(env, NULL, "netlinkSend: expected (fd, Uint8Array)");
    return NULL;
  }
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t n;
  do n = sendto(fd, data, len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendto(netlink)", errno);
  return int_value(env, (int)n);
}

static napi_value netlink_recv(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "netlinkRecv: expected (fd)");
    return NULL;
  }
  void *buf = malloc(RECV_MAX);
  if (!buf) return throw_errno(env, "malloc", ENOMEM);
  ssize_t n;
  do n = recv(fd, buf, RECV_MAX, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    int err = errno;
    free(buf);
    return throw_errno(env, "recv(netlink)", err == EAGAIN ? ETIMEDOUT : err);
  }
  napi_value out;
  void *copy;
  if (napi_create_buffer_copy(env, (size_t)n, buf, &copy, &out) != napi_ok) out = NULL;
  free(buf);
  return out;
}

static napi_value socket_pair(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) return throw_errno(env, "socketpair", errno);
  napi_value out;
  napi_create_array_with_length(env, 2, &out);
  napi_set_element(env, out, 0, int_value(env, fds[0]));
  napi_set_element(env, out, 1, int_value(env, fds[1]));
  return out;
}

static napi_value unix_datagram(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char path[sizeof ((struct sockaddr_un *)0)->sun_path + 1];
  size_t plen = 0;
  void *data;
  size_t len;
  bool typed = false;
  napi_typedarray_type type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok || plen == 0 || plen >= sizeof path - 1 ||
      napi_is_typedarray(env, argv[1], &typed) != napi_ok || !typed ||
      napi_get_typedarray_info(env, argv[1], &type, &len, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "unixDatagram: expected (path, Uint8Array) with a path shorter than sun_path");
    return NULL;
  }
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  memcpy(addr.sun_path, path, plen);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return int_value(env, -errno);
  ssize_t n;
  do n = sendto(fd, data, len, MSG_NOSIGNAL, (struct sockaddr *)&addr, alen);
  while (n < 0 && errno == EINTR);
  int result = n < 0 ? -errno : 0;
  close(fd);
  return int_value(env, result);
}

napi_status register_netlink(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"netlinkSocket", NULL, netlink_socket, NULL, NULL, NULL, napi_default, NULL},
    {"netlinkSend", NULL, netlink_send, NULL, NULL, NULL, napi_default, NULL},
    {"netlinkRecv", NULL, netlink_recv, NULL, NULL, NULL, napi_default, NULL},
    {"socketPair", NULL, socket_pair, NULL, NULL, NULL, napi_default, NULL},
    {"unixDatagram", NULL, unix_datagram, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
