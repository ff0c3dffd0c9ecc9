/* Registers flockExclusive on the addon's exports (file-lock.c). */
#ifndef NBDCRYPT_FILE_LOCK_H
#define NBDCRYPT_FILE_LOCK_H
#include <node_api.h>
napi_status register_file_lock(napi_env env, napi_value exports);
#endif
