/**
 * Keeps serve's garbage bounded without letting V8 collect all the time. Two kinds of garbage:
 *
 * - Promises and closures. Under load every request leaves a few KiB that live as long as the
 *   request (tens of ms with a deep queue), so they are promoted to the old generation, which
 *   V8 collects only when its heuristics say so: under a long copy the heap grows by tens of
 *   MiB between two full collections, enough on its own to break serve's memory budget. The
 *   guard checks the heap ten times a second and runs a full collection when more than
 *   HEAP_GUARD_BYTES are in use (a few ms for this mostly-dead heap; never when idle).
 * - Buffers outside the heap: socket reads and SSH packets (../transient-buffers.ts), hundreds
 *   of MB/s. V8 runs a minor collection only when the JS heap's young generation fills, which
 *   at this allocation rate is rare, so these Buffers pile up until they push the old
 *   generation over its limit and full collections run back to back. The guard instead runs a
 *   minor collection (about 1 ms) every YOUNG_GC_BYTES reported, and lets the old generation
 *   grow by 1 + OLD_GROWTH_PERCENT/100 after each full collection, so full collections all but
 *   stop without raising peak RSS (figures: docs/performance.md, Heap guard).
 *
 * `youngGc: false` (NBDCRYPT_YOUNG_GC=0) leaves the Buffers to V8's own schedule.
 *
 * V8 offers no runtime API for either, so gc() is obtained the way Node's docs show
 * (--expose-gc set at runtime, gc taken from a fresh context), and the growth factor is the
 * V8 flag --heap-growing-percent, which V8 reads each time it sets a new limit.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { NoteTransientBytes } from '../transient-buffers.js';

/** Live heap of an idle serve is ~10 MiB; twice that and more is mostly garbage. */
const HEAP_GUARD_BYTES = 24 * 1024 * 1024;
const CHECK_MS = 100;
/** Larger steps leave more full collections and a higher peak RSS (docs/performance.md). */
const YOUNG_GC_BYTES = 4 * 1024 * 1024;
/**
 * Much more raises the peak RSS; a factor of 2 (below what V8 picks by itself) costs a file
 * target sequential throughput (docs/performance.md, Heap guard).
 */
const OLD_GROWTH_PERCENT = 300;

type Gc = (options?: { type: 'major' | 'minor' }) => void;

export interface HeapGuardOptions {
  /** Full collection when the heap in use exceeds this (default 24 MiB). */
  limitBytes?: number;
  /** Minor collection per this many reported bytes (default 4 MiB). */
  youngGcBytes?: number;
  /** false: no minor collections and V8's own old-generation growth (NBDCRYPT_YOUNG_GC=0). */
  youngGc?: boolean;
}

/**
 * Created by a serving command before the layers it feeds (they get `noteTransientBytes`),
 * started once the data path is built, stopped on shutdown. Reports count only while started.
 */
export class HeapGuard {
  private stopGuard: (() => void) | undefined;
  private collector: NoteTransientBytes | undefined;

  constructor(private readonly o: HeapGuardOptions = {}) {}

  /** What the I/O layers call with the bytes of each short-lived Buffer. */
  readonly noteTransientBytes: NoteTransientBytes = (bytes) => this.collector?.(bytes);

  start(): void {
    if (this.stopGuard) return;
    const limitBytes = this.o.limitBytes ?? HEAP_GUARD_BYTES;
    const youngGcBytes = this.o.youngGcBytes ?? YOUNG_GC_BYTES;
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc !== 'function') return;
    const collect = gc as Gc;
    const timer = setInterval(() => {
      if (getHeapStatistics().used_heap_size > limitBytes) collect();
    }, CHECK_MS);
    timer.unref();
    if (this.o.youngGc === false) {
      this.stopGuard = () => clearInterval(timer);
      return;
    }
    setFlagsFromString(`--heap-growing-percent=${OLD_GROWTH_PERCENT}`);
    let reported = 0;
    let scheduled = false;
    // One minor collection per turn at most, after the code that reported the bytes has let go.
    const collectYoung = (): void => {
      scheduled = false;
      reported = 0;
      collect({ type: 'minor' });
    };
    this.collector = (bytes) => {
      reported += bytes;
      if (reported >= youngGcBytes && !scheduled) {
        scheduled = true;
        setImmediate(collectYoung);
      }
    };
    this.stopGuard = () => {
      clearInterval(timer);
      this.collector = undefined;
      setFlagsFromString('--heap-growing-percent=0');
    };
  }

  stop(): void {
    this.stopGuard?.();
    this.stopGuard = undefined;
  }
}
