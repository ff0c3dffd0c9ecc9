/**
 * The bytes received on a socket but not yet parsed, kept as the chunks the socket delivered.
 * `take(n)` returns a view into a chunk when the n bytes lie inside one (no copy, the common
 * case for headers and for payloads that arrived in one read) and copies exactly once otherwise,
 * into a buffer from the request buffers given (buffer-pool.ts).
 */
import { unpooled, type RequestBuffers } from '../block/buffer-pool.js';

export class InputBuffer {
  constructor(private readonly buffers: RequestBuffers = unpooled) {}

  private chunks: Buffer[] = [];
  private head = 0; // bytes of chunks[0] already consumed
  private total = 0;

  get available(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** The first `n` bytes without consuming them (n ≤ available). */
  peek(n: number): Buffer {
    return this.read(n, false);
  }

  /** Removes and returns the first `n` bytes (n ≤ available). */
  take(n: number): Buffer {
    return this.read(n, true);
  }

  /** Drops the first `n` bytes (n ≤ available). */
  skip(n: number): void {
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      const here = c.length - this.head;
      if (here > left) {
        this.head += left;
        break;
      }
      left -= here;
      this.chunks.shift();
      this.head = 0;
    }
    this.total -= n;
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.total = 0;
  }

  private read(n: number, consume: boolean): Buffer {
    if (n > this.total) throw new RangeError(`input buffer: asked for ${n} bytes, only ${this.total} buffered`);
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) {
      const view = first.subarray(this.head, this.head + n);
      if (consume) this.skip(n);
      return view;
    }
    const out = this.buffers.acquire(n);
    let pos = 0;
    let i = 0;
    let at = this.head;
    while (pos < n) {
      const c = this.chunks[i]!;
      const m = Math.min(c.length - at, n - pos);
      c.copy(out, pos, at, at + m);
      pos += m;
      i++;
      at = 0;
    }
    if (consume) this.skip(n);
    return out;
  }
}
