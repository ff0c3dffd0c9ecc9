/**
 * A BlockDevice held in RAM, allocated lazily in 1 MiB chunks so a large sparse device costs
 * only what is written. Used by tests, benchmarks and as a model of "a disk".
 */
import { checkRange, checkWritable, DEFAULT_BLOCK_SIZES, type BlockCaps, type BlockDevice, type BlockSizes } from './block-device.js';
import { unpooled, type RequestBuffers } from './buffer-pool.js';
import { NbdcryptError } from '../errors.js';

const CHUNK = 1 << 20;

export class MemoryDevice implements BlockDevice {
  readonly size: number;
  readonly caps: BlockCaps;
  readonly blockSize: BlockSizes;
  private readonly chunks = new Map<number, Buffer>();
  private closed = false;
  private readonly buffers: RequestBuffers;

  /** `buffers`: where read results come from (default: fresh buffers); `blockSize`: what to state (default: a disk's). */
  constructor(size: number, opts: { readOnly?: boolean; buffers?: RequestBuffers; blockSize?: BlockSizes } = {}) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`size must be a non-negative integer, got ${size}`);
    this.size = size;
    this.buffers = opts.buffers ?? unpooled;
    this.blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZES;
    this.caps = { flush: true, fua: true, trim: true, zeroes: true, multiConn: true, readOnly: opts.readOnly ?? false };
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.checkOpen();
    checkRange(this.size, offset, length, 'read');
    // allocUnsafe: every byte is written below (copied, or zero for unallocated chunks).
    const out = this.buffers.acquire(length);
    this.forEachChunk(offset, length, (chunk, at, pos, n) => {
      const c = this.chunks.get(chunk);
      if (c) c.copy(out, pos, at, at + n);
      else out.fill(0, pos, pos + n);
    });
    return out;
  }

  /** A view into one allocated chunk; undefined if the range spans chunks or reads as zeroes. */
  peek(offset: number, length: number): Buffer | undefined {
    this.checkOpen();
    checkRange(this.size, offset, length, 'read');
    const chunk = Math.floor(offset / CHUNK);
    const at = offset - chunk * CHUNK;
    if (at + length > CHUNK) return undefined;
    return this.chunks.get(chunk)?.subarray(at, at + length);
  }

  async write(offset: number, data: Buffer, _fua = false, owned = false): Promise<void> {
    this.checkOpen();
    checkWritable(this, 'write');
    checkRange(this.size, offset, data.length, 'write');
    this.forEachChunk(offset, data.length, (chunk, at, pos, n) => {
      let c = this.chunks.get(chunk);
      if (!c) this.chunks.set(chunk, (c = Buffer.alloc(CHUNK)));
      data.copy(c, at, pos, pos + n);
    });
    if (owned) this.buffers.release(data);
  }

  async flush(): Promise<void> {
    this.checkOpen();
  }

  async trim(offset: number, length: number): Promise<void> {
    await this.writeZeroes(offset, length);
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    this.checkOpen();
    checkWritable(this, 'write zeroes');
    checkRange(this.size, offset, length, 'write zeroes');
    this.forEachChunk(offset, length, (chunk, at, _pos, n) => {
      const c = this.chunks.get(chunk);
      if (!c) return;
      if (n === CHUNK) this.chunks.delete(chunk);
      else c.fill(0, at, at + n);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.chunks.clear();
  }

  /** Bytes of RAM actually allocated (for tests of sparseness). */
  get allocatedBytes(): number {
    return this.chunks.size * CHUNK;
  }

  private checkOpen(): void {
    if (this.closed) throw new NbdcryptError('ECLOSED', 'memory device: already closed');
  }

  private forEachChunk(offset: number, length: number, fn: (chunk: number, at: number, pos: number, n: number) => void): void {
    let pos = 0;
    while (pos < length) {
      const abs = offset + pos;
      const chunk = Math.floor(abs / CHUNK);
      const at = abs - chunk * CHUNK;
      const n = Math.min(CHUNK - at, length - pos);
      fn(chunk, at, pos, n);
      pos += n;
    }
  }
}
