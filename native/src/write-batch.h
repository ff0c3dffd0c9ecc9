/* Registers pwriteBatch on the addon's exports (write-batch.c). */
#ifndef NBDCRYPT_WRITE_BATCH_H
#define NBDCRYPT_WRITE_BATCH_H
#include <node_api.h>
napi_status register_write_batch(napi_env env, napi_value exports);
#endif
