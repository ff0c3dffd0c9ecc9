/**
 * Reusable request buffers. Every request through nbdcrypt needs a buffer or two of its size
 * (a WRITE payload, its ciphertext, a READ's data); allocating them fresh makes V8 collect
 * garbage often under load ("external memory pressure") and leaves glibc's heap fragmented
 * well above what is live (figures: docs/performance.md, Memory). Buffers
 * from 4 KiB to 32 MiB come from per-size free lists (capacities are powers of two) and go back
 * with release().
 *
 * Ownership rule: a buffer is released once, by its last owner, and never used after. release()
 * ignores buffers the pool did not lend (views of socket chunks, Node's small-buffer slab,
 * anything allocated elsewhere) and a second release of the same buffer, so a layer may
 * always release what it owns; a layer that forgets only leaves the buffer to the GC.
 * A READ result belongs to the caller; a WRITE payload belongs to the device only when
 * passed with owned = true (BlockDevice.write).
 */

const MIN_POOLED = 4096;
const MAX_POOLED = 32 * 1024 * 1024;

/** Where a layer gets its request buffers and gives them back (see the ownership rule above). */
export interface RequestBuffers {
  /** A buffer of exactly `length` bytes, contents undefined (like Buffer.allocUnsafe). */
  acquire(length: number): Buffer;
  /** A copy of `src` that the caller owns. */
  copyOf(src: Buffer): Buffer;
  /** Gives `buf` back; a no-op for buffers this source did not lend. */
  release(buf: Buffer | undefined): void;
}

/**
 * Fresh buffers for every request, released to the GC: what a layer uses when the command
 * that built it passed no pool (tests, one-shot commands such as format and dump).
 */
export const unpooled: RequestBuffers = {
  acquire: (length) => Buffer.allocUnsafe(length),
  copyOf: (src) => Buffer.from(src),
  release: () => undefined,
};

/** The pool a serving command creates and hands to every layer of its data path. */
export class BufferPool implements RequestBuffers {
  /** capacity → buffers ready for reuse. */
  private readonly free = new Map<number, ArrayBuffer[]>();
  /** Buffers handed out and not yet released. */
  private readonly lent = new WeakSet<ArrayBuffer>();
  private freeBytes = 0;

  /** `maxFreeBytes`: free buffers kept beyond this are left to the GC. */
  constructor(readonly maxFreeBytes: number) {}

  /** A buffer of exactly `length` bytes, contents undefined (like Buffer.allocUnsafe). */
  acquire(length: number): Buffer {
    if (length < MIN_POOLED || length > MAX_POOLED) return Buffer.allocUnsafe(length);
    const capacity = 2 ** Math.ceil(Math.log2(length));
    let ab = this.free.get(capacity)?.pop();
    if (ab) this.freeBytes -= capacity;
    else ab = Buffer.allocUnsafeSlow(capacity).buffer as ArrayBuffer;
    this.lent.add(ab);
    return Buffer.from(ab, 0, length);
  }

  /** A pooled copy of `src`. */
  copyOf(src: Buffer): Buffer {
    const b = this.acquire(src.length);
    src.copy(b);
    return b;
  }

  /** Gives `buf` (or any view of it) back; a no-op for buffers this pool did not lend. */
  release(buf: Buffer | undefined): void {
    const ab = buf?.buffer as ArrayBuffer | undefined;
    if (!ab || !this.lent.has(ab)) return;
    this.lent.delete(ab);
    if (this.freeBytes + ab.byteLength > this.maxFreeBytes) return;
    let list = this.free.get(ab.byteLength);
    if (!list) this.free.set(ab.byteLength, (list = []));
    list.push(ab);
    this.freeBytes += ab.byteLength;
  }

  /** Bytes held in free lists (for stats and tests). */
  get idleBytes(): number {
    return this.freeBytes;
  }
}
