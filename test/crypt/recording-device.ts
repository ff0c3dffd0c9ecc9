/**
 * Test helper: a BlockDevice over a MemoryDevice that records every call (to check what
 * EncryptedDevice passes down: FUA, flush, trim ranges, write sizes), can advertise other
 * capabilities, and can delay each completion by a random number of event-loop turns so
 * requests in flight really complete out of order. The bytes live in a real MemoryDevice.
 */
import type { BlockCaps, BlockDevice, BlockSizes } from '../../src/block/block-device.js';
import { MemoryDevice } from '../../src/block/memory-device.js';

export interface Call {
  op: 'read' | 'write' | 'flush' | 'trim' | 'writeZeroes' | 'close';
  offset?: number;
  length?: number;
  fua?: boolean;
}

export class RecordingDevice implements BlockDevice {
  readonly mem: MemoryDevice;
  readonly caps: BlockCaps;
  readonly blockSize: BlockSizes;
  readonly calls: Call[] = [];
  record = true;
  /** Max event-loop turns each call waits before doing its work (0 = none). */
  jitter = 0;
  /** Whether peek lends views of the MemoryDevice's bytes (off: the caller must read). */
  lendViews = false;
  /** Views lent by peek. */
  peeks = 0;

  constructor(size: number, caps: Partial<BlockCaps> = {}) {
    this.mem = new MemoryDevice(size, { readOnly: caps.readOnly });
    this.caps = { ...this.mem.caps, ...caps };
    this.blockSize = this.mem.blockSize;
  }

  get size(): number {
    return this.mem.size;
  }

  private async delay(): Promise<void> {
    if (this.jitter === 0) return;
    const turns = Math.floor(Math.random() * (this.jitter + 1));
    for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
  }

  private log(c: Call): void {
    if (this.record) this.calls.push(c);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.log({ op: 'read', offset, length });
    await this.delay();
    return this.mem.read(offset, length);
  }

  peek(offset: number, length: number): Buffer | undefined {
    const view = this.lendViews ? this.mem.peek(offset, length) : undefined;
    if (view) this.peeks++;
    return view;
  }

  async write(offset: number, data: Buffer, fua = false): Promise<void> {
    this.log({ op: 'write', offset, length: data.length, fua });
    // Copy now: the caller may reuse its buffer once we resolve, and we write after a delay.
    const copy = Buffer.from(data);
    await this.delay();
    await this.mem.write(offset, copy);
  }

  async flush(): Promise<void> {
    this.log({ op: 'flush' });
    await this.mem.flush();
  }

  async trim(offset: number, length: number): Promise<void> {
    this.log({ op: 'trim', offset, length });
    await this.mem.trim(offset, length);
  }

  async writeZeroes(offset: number, length: number, fua = false): Promise<void> {
    this.log({ op: 'writeZeroes', offset, length, fua });
    await this.mem.writeZeroes(offset, length);
  }

  async close(): Promise<void> {
    this.log({ op: 'close' });
    await this.mem.close();
  }
}
