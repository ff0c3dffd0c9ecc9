/* Registers setSendBuffer on the addon's exports (socket-buffer.c). */
#ifndef NBDCRYPT_SOCKET_BUFFER_H
#define NBDCRYPT_SOCKET_BUFFER_H
#include <node_api.h>
napi_status register_socket_buffer(napi_env env, napi_value exports);
#endif
