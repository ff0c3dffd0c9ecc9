/*
 * A JS promise settled by work on the libuv thread pool: what every asynchronous call of the
 * addon (cryptAsync, pwriteBatch, punchHole) needs, in one place. Put a pool_job in the call's
 * state, start it with pool_job_start, and end the `complete` callback with pool_job_settle.
 * Spec: N-API async work (napi_create_async_work) and promises (napi_create_promise).
 */
#ifndef NBDCRYPT_POOL_JOB_H
#define NBDCRYPT_POOL_JOB_H
#include <stdbool.h>
#include <node_api.h>

/* Number.MAX_SAFE_INTEGER: offsets and counts from JS arrive as doubles. */
#define JS_MAX_SAFE_INTEGER 9007199254740991.0

typedef struct {
  napi_deferred deferred;
  napi_async_work work;
} pool_job;

/*
 * Creates the promise and queues `execute` (on a pool thread) and then `complete` (on the JS
 * thread) with `data`. Returns the promise, or NULL with nothing queued: the caller then frees
 * `data` and throws.
 */
static inline napi_value pool_job_start(napi_env env, pool_job *job, const char *name, napi_async_execute_callback execute,
                                        napi_async_complete_callback complete, void *data) {
  napi_value promise, label;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok || napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &label) != napi_ok ||
      napi_create_async_work(env, NULL, label, execute, complete, data, &job->work) != napi_ok)
    return NULL;
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    return NULL;
  }
  return promise;
}

/* From `complete`: resolves (ok) or rejects the promise with `value` and frees the work. */
static inline void pool_job_settle(napi_env env, pool_job *job, bool ok, napi_value value) {
  if (ok) napi_resolve_deferred(env, job->deferred, value);
  else napi_reject_deferred(env, job->deferred, value);
  napi_delete_async_work(env, job->work);
}
#endif
