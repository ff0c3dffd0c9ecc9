/**
 * A bounded, write-through cache of whole blocks in front of another BlockDevice. Stacked
 * above EncryptedDevice it holds plaintext, so a hit skips the remote round trip and the
 * decryption. Blocks live in one slab allocated up front (pages are committed only as they
 * are used), so the cache's footprint is its size, with no per-block garbage for the GC;
 * npm lru-cache keeps the block → slot map in LRU order.
 *
 * Concurrency rule: once calls settle, the cache never holds a block that differs from what
 * the device below returns. Every write, trim or zero stamps the blocks it touches with a new
 * epoch when it starts and again when it ends, and counts itself as pending on them meanwhile.
 * A write stores its whole blocks when it starts (so it can give its buffer to the device
 * below, which encrypts it in place) and keeps them only if it succeeds and no other call
 * touched them meanwhile; a read fills the cache only with blocks not stamped since it started
 * and with no write pending.
 *
 * The stamps are only needed while some call that started before them is in flight, so they
 * are dropped whenever nothing is; under load that never pauses they are dropped once they
 * outnumber the cache's slots, and the calls then in flight stop trusting them: such a read
 * does not fill the cache and such a write does not keep its blocks. That bounds the stamp
 * map by the cache's size instead of by the blocks written since the last idle moment.
 */
import { LRUCache } from 'lru-cache';
import type { BlockCaps, BlockDevice, BlockSizes } from './block-device.js';
import { unpooled, type RequestBuffers } from './buffer-pool.js';

export interface CacheStats {
  hits: number;
  misses: number;
  bytes: number;
}

export class SectorCache implements BlockDevice {
  readonly size: number;
  readonly caps: BlockCaps;
  readonly blockSize: BlockSizes;
  /** block number → slot index in `slab`, least recently used first out. */
  private readonly lru: LRUCache<number, number>;
  private readonly slab: Buffer;
  private readonly freeSlots: number[] = [];
  private epoch = 0;
  /** block → epoch of the last write that touched it; see forgottenUpTo. */
  private readonly touched = new Map<number, number>();
  /** Stamps up to this epoch were dropped from `touched`; calls that started by then trust none. */
  private forgottenUpTo = -1;
  private readonly stampLimit: number;
  /** block → write-type calls in flight on it (a read must not cache what it saw there). */
  private readonly pending = new Map<number, number>();
  private inFlight = 0;
  private hits = 0;
  private misses = 0;

  constructor(
    private readonly lower: BlockDevice,
    private readonly granule: number,
    maxBytes: number,
    /** Where read results come from (default: fresh buffers). */
    private readonly buffers: RequestBuffers = unpooled,
    /** Stamps kept while calls are in flight before they are dropped (default: the slots, at least 1,024). */
    stampLimit?: number,
  ) {
    if (!Number.isInteger(granule) || granule < 512 || (granule & (granule - 1)) !== 0) {
      throw new RangeError(`granule must be a power of two ≥ 512, got ${granule}`);
    }
    if (!Number.isSafeInteger(maxBytes) || maxBytes < granule) {
      throw new RangeError(`maxBytes must be at least one block (${granule}), got ${maxBytes}`);
    }
    this.size = lower.size;
    this.caps = lower.caps;
    this.blockSize = lower.blockSize;
    const slots = Math.floor(maxBytes / granule);
    this.stampLimit = stampLimit ?? Math.max(slots, 1024);
    // One more than the slots, so the LRU never evicts on its own: store() decides.
    this.lru = new LRUCache<number, number>({ max: slots + 1 });
    this.slab = Buffer.allocUnsafeSlow(slots * granule);
    for (let i = slots - 1; i >= 0; i--) this.freeSlots.push(i);
  }

  get stats(): CacheStats {
    return { hits: this.hits, misses: this.misses, bytes: this.lru.size * this.granule };
  }

  /** How many blocks carry a write stamp now: at most the stamp limit each time a write-type call ends. */
  get stampedBlocks(): number {
    return this.touched.size;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const first = Math.floor(offset / this.granule);
    const last = Math.floor((offset + length - 1) / this.granule);
    if (length > 0 && offset + length <= this.size) {
      const cached = this.fromCache(offset, length, first, last);
      if (cached) {
        this.hits++;
        return cached;
      }
    }
    this.misses++;
    return this.track(async () => {
      const start = this.epoch;
      // Widen to whole blocks so the result can fill the cache, unless that passes the end.
      const wideStart = first * this.granule;
      const wideEnd = Math.min((last + 1) * this.granule, this.size);
      if (length === 0 || wideEnd - wideStart > 4 * length + 2 * this.granule) {
        return this.lower.read(offset, length);
      }
      const wide = await this.lower.read(wideStart, wideEnd - wideStart);
      // A read that started before the stamps were last dropped cannot tell what changed.
      if (start > this.forgottenUpTo) {
        for (let b = first; b <= last; b++) {
          const at = (b - first) * this.granule;
          if (at + this.granule > wide.length) break; // a short last block is not cached
          if ((this.touched.get(b) ?? -1) < start && !this.pending.has(b)) this.store(b, wide, at);
        }
      }
      return wide.subarray(offset - wideStart, offset - wideStart + length);
    });
  }

  async write(offset: number, data: Buffer, fua?: boolean, owned = false): Promise<void> {
    const started = this.invalidate(offset, data.length);
    this.storeWholeBlocks(offset, data);
    let ok = false;
    try {
      await this.track(() => this.lower.write(offset, data, fua, owned));
      ok = true;
    } finally {
      this.settle(offset, data.length, started, ok);
    }
  }

  async flush(): Promise<void> {
    return this.lower.flush();
  }

  async trim(offset: number, length: number): Promise<void> {
    const started = this.invalidate(offset, length);
    try {
      await this.track(() => this.lower.trim(offset, length));
    } finally {
      this.settle(offset, length, started, false);
    }
  }

  async writeZeroes(offset: number, length: number, fua?: boolean): Promise<void> {
    const started = this.invalidate(offset, length);
    try {
      await this.track(() => this.lower.writeZeroes(offset, length, fua));
    } finally {
      this.settle(offset, length, started, false);
    }
  }

  async close(): Promise<void> {
    this.lru.clear();
    this.freeSlots.length = 0;
    this.slab.fill(0); // plaintext: do not leave it for whoever reuses the pages
    await this.lower.close();
  }

  private fromCache(offset: number, length: number, first: number, last: number): Buffer | undefined {
    for (let b = first; b <= last; b++) if (!this.lru.has(b)) return undefined;
    const out = this.buffers.acquire(length);
    for (let b = first; b <= last; b++) {
      const slotStart = (this.lru.get(b) as number) * this.granule;
      const blockStart = b * this.granule;
      const from = Math.max(offset, blockStart);
      const to = Math.min(offset + length, blockStart + this.granule);
      this.slab.copy(out, from - offset, slotStart + (from - blockStart), slotStart + (to - blockStart));
    }
    return out;
  }

  /** Drops the blocks a write-type call touches, stamps them and marks them pending; returns the new epoch. */
  private invalidate(offset: number, length: number): number {
    const e = ++this.epoch;
    this.forBlocks(offset, length, (b) => {
      this.drop(b);
      this.touched.set(b, e);
      this.pending.set(b, (this.pending.get(b) ?? 0) + 1);
    });
    return e;
  }

  /** Write-through, done before the write is sent: the device below may own `data` after. */
  private storeWholeBlocks(offset: number, data: Buffer): void {
    const first = Math.ceil(offset / this.granule);
    const end = Math.floor((offset + data.length) / this.granule);
    for (let b = first; b < end; b++) this.store(b, data, b * this.granule - offset);
  }

  /**
   * After a write-type call finished: stamp its blocks again and clear its pending mark. Blocks
   * it stored stay only if it succeeded and no other call touched them meanwhile.
   */
  private settle(offset: number, length: number, started: number, keep: boolean): void {
    const e = ++this.epoch;
    this.forBlocks(offset, length, (b) => {
      const current = this.touched.get(b) === started;
      this.touched.set(b, e);
      const n = this.pending.get(b)! - 1;
      if (n === 0) this.pending.delete(b);
      else this.pending.set(b, n);
      if (!(keep && current)) this.drop(b);
    });
    if (this.inFlight === 0) {
      this.touched.clear();
    } else if (this.touched.size > this.stampLimit) {
      this.touched.clear();
      this.forgottenUpTo = this.epoch;
    }
  }

  /** Copies one block from `src` at `at` into the cache, evicting the oldest if full. */
  private store(block: number, src: Buffer, at: number): void {
    let slot = this.lru.get(block);
    if (slot === undefined) {
      slot = this.freeSlots.pop() ?? this.lru.pop();
      if (slot === undefined) return;
      this.lru.set(block, slot);
    }
    src.copy(this.slab, slot * this.granule, at, at + this.granule);
  }

  private drop(block: number): void {
    const slot = this.lru.peek(block);
    if (slot === undefined) return;
    this.lru.delete(block);
    this.freeSlots.push(slot);
  }

  private forBlocks(offset: number, length: number, fn: (block: number) => void): void {
    if (length === 0) return;
    const first = Math.floor(offset / this.granule);
    const last = Math.floor((offset + length - 1) / this.granule);
    for (let b = first; b <= last; b++) fn(b);
  }

  private async track<T>(fn: () => Promise<T>): Promise<T> {
    this.inFlight++;
    try {
      return await fn();
    } finally {
      this.inFlight--;
    }
  }
}
