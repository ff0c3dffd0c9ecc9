/**
 * What a command that serves (serve, demo, bench e2e in-process) creates once for its data
 * path, and hands to every layer that needs it, instead of process-wide state: the heap guard
 * (heap-guard.ts), whose `noteTransientBytes` the NBD server, the NBD client and the SSH
 * transport report to, and the pool of request buffers (block/buffer-pool.ts) that every
 * layer acquires from and releases to, so a buffer one layer lends another gives back.
 */
import { BufferPool } from '../block/buffer-pool.js';
import type { TargetOptions } from '../backend/open-target.js';
import type { RequestIo } from '../block/request-io.js';
import { requestThreadPoolSize, type Environment } from './environment.js';
import { HeapGuard } from './heap-guard.js';

/**
 * File targets do their I/O on libuv's thread pool, and large native cipher requests run
 * there too; libuv's default of 4 threads caps the requests a file can have in flight.
 */
const THREAD_POOL_SIZE = 16;
/** Free request buffers kept for reuse; beyond this they are left to the GC. */
const POOLED_FREE_BYTES = 16 * 1024 * 1024;

export interface ServeRuntime {
  readonly env: Environment;
  /** Not yet started: the command starts it once its data path is built. */
  readonly heapGuard: HeapGuard;
  readonly io: RequestIo;
}

/** Call first thing in the command, before any file or cipher work (requestThreadPoolSize). */
export function createServeRuntime(env: Environment): ServeRuntime {
  requestThreadPoolSize(THREAD_POOL_SIZE);
  const heapGuard = new HeapGuard({ youngGc: env.youngGc });
  return { env, heapGuard, io: { buffers: new BufferPool(POOLED_FREE_BYTES), noteTransientBytes: heapGuard.noteTransientBytes } };
}

/** `opts` with the runtime's request buffers and transient-bytes reporting for the target. */
export function withRuntime(opts: TargetOptions, rt: ServeRuntime): TargetOptions {
  return { ...opts, io: rt.io };
}
