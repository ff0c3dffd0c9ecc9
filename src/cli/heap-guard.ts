/**
 * Keeps the garbage in serve's JS heap bounded. Under load every request leaves a few KiB of
 * promises and closures that live as long as the request (tens of ms with a deep queue), so
 * they are promoted to the old generation, and V8 collects that only when its heuristics say
 * so: measured during a 2 GiB nbdcopy, the heap grew from 12 to 85 MiB between two full
 * collections (bench/memory.ts), which alone broke the RSS budget of issue 6. The guard checks
 * the heap ten times a second and runs a full collection when more than HEAP_GUARD_BYTES are in
 * use (about 5 ms for this mostly-dead heap; never when idle). Checking every 500 ms instead let
 * the write phase of bench/memory.ts peak 8-15 MiB higher (208-212 vs 195-204 MiB).
 * V8 offers no runtime flag for this, so gc() is obtained the way Node's docs show
 * (--expose-gc set at runtime, gc taken from a fresh context).
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Live heap of an idle serve is ~10 MiB; twice that and more is mostly garbage. */
const HEAP_GUARD_BYTES = 24 * 1024 * 1024;
const CHECK_MS = 100;

/** Starts the guard; returns the function that stops it. */
export function startHeapGuard(limitBytes = HEAP_GUARD_BYTES): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as unknown;
  if (typeof gc !== 'function') return () => undefined;
  const timer = setInterval(() => {
    if (getHeapStatistics().used_heap_size > limitBytes) (gc as () => void)();
  }, CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
