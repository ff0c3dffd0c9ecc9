/**
 * Small positional writes gathered per event-loop turn and written by one thread-pool job
 * (the native pwriteBatch, native/src/write-batch.c). Node's fs.write costs a pool round trip
 * each, more than a 4 KiB pwrite itself; the writes a client pipelines arrive in one turn, so
 * one round trip serves them all. Writes run in the order they were queued. Without the addon
 * (or with FileFastPaths.writeBatch = false) FileDevice uses fs.write alone.
 */
import { loadNative, type NativeAddon } from '../native-addon.js';

interface Queued {
  buf: Buffer;
  offset: number;
  resolve(result: number): void;
}

export class WriteBatcher {
  private queue: Queued[] = [];
  /** A batch is on the thread pool. */
  private writing = false;

  private constructor(
    private readonly fd: number,
    private readonly addon: NativeAddon,
  ) {}

  /** A batcher for `fd`, or undefined when the addon is unavailable. */
  static for(fd: number): WriteBatcher | undefined {
    const a = loadNative();
    return a && typeof a.pwriteBatch === 'function' ? new WriteBatcher(fd, a) : undefined;
  }

  /** Bytes written (possibly fewer than asked), or -errno: the caller retries with fs.write. */
  write(buf: Buffer, offset: number): Promise<number> {
    return new Promise((resolve) => {
      this.queue.push({ buf, offset, resolve });
      // After the microtasks of this turn, so every write the turn produces joins the batch.
      if (this.queue.length === 1 && !this.writing) process.nextTick(() => this.submit());
    });
  }

  /**
   * One batch at a time: buffered writes to one file serialize on its inode lock anyway, and
   * two pool threads contending for it spin (perf: rwsem_spin_on_owner); the writes that
   * arrive meanwhile form the next, larger batch.
   */
  private submit(): void {
    const batch = this.queue;
    this.queue = [];
    this.writing = true;
    const finish = (results: number[] | undefined): void => {
      batch.forEach((q, i) => q.resolve(results?.[i] ?? -1));
      this.writing = false;
      if (this.queue.length > 0) this.submit();
    };
    this.addon.pwriteBatch(this.fd, batch.map((q) => q.buf), batch.map((q) => q.offset)).then(finish, () => finish(undefined));
  }
}
