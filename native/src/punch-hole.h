/* Registers punchHole on the addon's exports (punch-hole.c). */
#ifndef NBDCRYPT_PUNCH_HOLE_H
#define NBDCRYPT_PUNCH_HOLE_H
#include <node_api.h>
napi_status register_punch_hole(napi_env env, napi_value exports);
#endif
