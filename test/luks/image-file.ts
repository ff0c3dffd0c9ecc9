/**
 * A tiny BlockDevice over a local image file for the LUKS2 tests (fs sync calls, no caching),
 * so these tests do not depend on the NBD front end's FileDevice.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { checkRange, checkWritable, DEFAULT_BLOCK_SIZES, type BlockCaps, type BlockDevice } from '../../src/block/block-device.js';

export class ImageFile implements BlockDevice {
  readonly size: number;
  readonly caps: BlockCaps;
  readonly blockSize = DEFAULT_BLOCK_SIZES;
  private readonly fd: number;

  constructor(path: string, opts: { readOnly?: boolean } = {}) {
    this.fd = openSync(path, opts.readOnly ? 'r' : 'r+');
    this.size = fstatSync(this.fd).size;
    this.caps = { flush: true, fua: false, trim: false, zeroes: false, multiConn: false, readOnly: opts.readOnly ?? false };
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this.size, offset, length, 'read');
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return buf;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    checkWritable(this, 'write');
    checkRange(this.size, offset, data.length, 'write');
    let done = 0;
    while (done < data.length) done += writeSync(this.fd, data, done, data.length - done, offset + done);
  }

  async flush(): Promise<void> {
    if (!this.caps.readOnly) fsyncSync(this.fd);
  }

  async trim(): Promise<void> {}

  async writeZeroes(offset: number, length: number): Promise<void> {
    await this.write(offset, Buffer.alloc(length));
  }

  async close(): Promise<void> {
    closeSync(this.fd);
  }
}

/** Wraps `dev` so every write/writeZeroes/trim is recorded (to prove a failure wrote nothing). */
export function recordWrites(dev: BlockDevice): { dev: BlockDevice; writes: Array<[number, number]> } {
  const writes: Array<[number, number]> = [];
  const wrapped: BlockDevice = {
    get size() {
      return dev.size;
    },
    get caps() {
      return dev.caps;
    },
    get blockSize() {
      return dev.blockSize;
    },
    read: (o, l) => dev.read(o, l),
    write: (o, d, f) => (writes.push([o, d.length]), dev.write(o, d, f)),
    flush: () => dev.flush(),
    trim: (o, l) => (writes.push([o, l]), dev.trim(o, l)),
    writeZeroes: (o, l, f) => (writes.push([o, l]), dev.writeZeroes(o, l, f)),
    close: () => dev.close(),
  };
  return { dev: wrapped, writes };
}
