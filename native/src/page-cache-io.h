/* Registers preadNoWait/pwriteNoWait on the addon's exports (page-cache-io.c). */
#ifndef NBDCRYPT_PAGE_CACHE_IO_H
#define NBDCRYPT_PAGE_CACHE_IO_H
#include <node_api.h>
napi_status register_page_cache_io(napi_env env, napi_value exports);
#endif
