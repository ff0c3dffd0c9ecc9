/**
 * The one interface every layer speaks (docs/ARCHITECTURE.md, BlockDevice contract): the NBD
 * client, the file and memory backends, the cache and the EncryptedDevice all implement it, so
 * layers stack like nbdkit filters and each is testable alone.
 */
import { NbdcryptError } from '../errors.js';

export interface BlockCaps {
  /** flush() makes every completed write durable. */
  readonly flush: boolean;
  /** write(..., fua=true) is durable when it resolves. */
  readonly fua: boolean;
  /** trim() may deallocate. */
  readonly trim: boolean;
  /** writeZeroes() is native (cheaper than writing zeroes). */
  readonly zeroes: boolean;
  /** A flush through one handle covers writes completed through any other. */
  readonly multiConn: boolean;
  readonly readOnly: boolean;
}

/**
 * The request sizes a layer works with, in bytes (powers of two but the maximum): requests
 * aligned to `minimum` are handled without extra work, `preferred` is the size that costs
 * least per byte (the LUKS sector of an encrypted layer), `maximum` the largest request taken.
 * The NBD server advertises exactly the top layer's values.
 */
export interface BlockSizes {
  readonly minimum: number;
  readonly preferred: number;
  readonly maximum: number;
}

/** Largest request any layer takes: the NBD maximum payload that the kernel and nbdcopy use. */
export const MAX_REQUEST_BYTES = 32 * 1024 * 1024;

/** What a byte-addressable store (a file, memory) states: the kernel's sector and page. */
export const DEFAULT_BLOCK_SIZES: BlockSizes = { minimum: 512, preferred: 4096, maximum: MAX_REQUEST_BYTES };

export interface BlockDevice {
  /** Size in bytes; at most 2^53. */
  readonly size: number;
  readonly caps: BlockCaps;
  readonly blockSize: BlockSizes;
  /** The returned buffer is the caller's (it may modify it and release it to the stack's RequestBuffers). */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Optional, for devices that hold their bytes in memory: the stored bytes at `offset` as a
   * view, without a copy, or undefined when the device cannot give one for this range. The
   * caller reads it at once (before its next await) and never modifies or keeps it.
   */
  peek?(offset: number, length: number): Buffer | undefined;
  /**
   * Writes `data` at `offset`. By default `data` is borrowed: the device reads it during the
   * call, never modifies it and drops every reference before the promise settles. With
   * `owned` the caller gives it away: the device may modify or keep it and releases it to
   * the stack's RequestBuffers (buffer-pool.ts) when done.
   */
  write(offset: number, data: Buffer, fua?: boolean, owned?: boolean): Promise<void>;
  flush(): Promise<void>;
  trim(offset: number, length: number): Promise<void>;
  writeZeroes(offset: number, length: number, fua?: boolean): Promise<void>;
  close(): Promise<void>;
}

/** Throws ERANGE unless [offset, offset+length) lies inside a device of `size` bytes. */
export function checkRange(size: number, offset: number, length: number, what = 'request'): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new NbdcryptError('ERANGE', `${what}: offset ${offset} and length ${length} must be non-negative integers`);
  }
  if (offset + length > size) {
    throw new NbdcryptError('ERANGE', `${what}: bytes ${offset}..${offset + length} lie past the end of the ${size}-byte device`);
  }
}

/** Throws EROFS for a write-type call on a read-only device. */
export function checkWritable(dev: { caps: BlockCaps }, what: string): void {
  if (dev.caps.readOnly) throw new NbdcryptError('EROFS', `${what}: the device is read-only`);
}
