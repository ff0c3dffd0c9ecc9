/**
 * Test wrapper around a BlockDevice: delays chosen operations, records the peak number of
 * concurrent calls and can override caps, to test ordering, back-pressure and advertising.
 * Not a test file itself.
 */
import type { BlockCaps, BlockDevice, BlockSizes } from '../../src/block/block-device.js';

export class SlowDevice implements BlockDevice {
  readonly size: number;
  readonly caps: BlockCaps;
  readonly blockSize: BlockSizes;
  active = 0;
  peak = 0;
  calls = 0;

  constructor(
    private readonly inner: BlockDevice,
    private readonly delayMs: (op: string, offset: number) => number,
    caps: Partial<BlockCaps> = {},
  ) {
    this.size = inner.size;
    this.caps = { ...inner.caps, ...caps };
    this.blockSize = inner.blockSize;
  }

  private async wrap<T>(op: string, offset: number, f: () => Promise<T>): Promise<T> {
    this.calls++;
    this.active++;
    this.peak = Math.max(this.peak, this.active);
    try {
      const d = this.delayMs(op, offset);
      if (d > 0) await new Promise((r) => setTimeout(r, d));
      return await f();
    } finally {
      this.active--;
    }
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.wrap('read', offset, () => this.inner.read(offset, length));
  }
  write(offset: number, data: Buffer, fua?: boolean): Promise<void> {
    return this.wrap('write', offset, () => this.inner.write(offset, data, fua));
  }
  flush(): Promise<void> {
    return this.wrap('flush', 0, () => this.inner.flush());
  }
  trim(offset: number, length: number): Promise<void> {
    return this.wrap('trim', offset, () => this.inner.trim(offset, length));
  }
  writeZeroes(offset: number, length: number, fua?: boolean): Promise<void> {
    return this.wrap('zero', offset, () => this.inner.writeZeroes(offset, length, fua));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
