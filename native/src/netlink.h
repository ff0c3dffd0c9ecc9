/* Registers the netlink, socketpair and unix-datagram calls on the addon's exports (netlink.c). */
#ifndef NBDCRYPT_NETLINK_H
#define NBDCRYPT_NETLINK_H
#include <node_api.h>
napi_status register_netlink(napi_env env, napi_value exports);
#endif
