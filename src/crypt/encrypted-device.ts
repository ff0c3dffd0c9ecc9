/**
 * EncryptedDevice: the plaintext view of a LUKS data segment (aes-xts-plain64 by default, or any
 * spec of cipher-spec.ts) stacked on the BlockDevice that holds the ciphertext. Plaintext byte
 * p lives in ciphertext sector floor(p / sectorSize) at lower offset dataOffset + that
 * sector · sectorSize, encrypted with IV number (sector · sectorSize / 512) + ivTweak
 * (docs/formats.md, LUKS2 data segment). Aligned requests are one lower read/write with the
 * cipher run off the event loop; unaligned writes read, decrypt, patch and re-encrypt their
 * head/tail sectors. Every request registers its sector range in a lock table on arrival, so
 * overlapping requests take effect in arrival order (no lost bytes in a shared sector, no torn
 * RMW seen by a read). WRITE_ZEROES is emulated with encrypted zeroes; TRIM reaches the lower
 * device only for whole sectors and only with allowDiscards (it reveals which sectors are
 * unused, as in cryptsetup; docs/security.md).
 */
import { writeZeroChunks } from '../block/write-zeroes.js';
import { checkRange, checkWritable, type BlockCaps, type BlockDevice, type BlockSizes } from '../block/block-device.js';
import { unpooled, type RequestBuffers } from '../block/buffer-pool.js';
import { NbdcryptError } from '../errors.js';
import { createSectorCipher, type EngineName, type SectorCipher } from './sector-cipher.js';
import type { XtsEngineName } from './xts-cipher.js';
import { DEFAULT_CIPHER, parseCipherSpec, type CipherSpec } from './cipher-spec.js';
import { checkSectorSize } from './xts-args.js';
import { SectorLocks } from './sector-locks.js';
import { cryptInto, type CryptInto } from './native-engine.js';

export interface EncryptedDeviceOptions {
  /** Volume key (copied; the caller wipes its own copy): 64 bytes for aes-xts-plain64. */
  key: Buffer;
  /** Data cipher (LUKS2 segment.encryption, or LUKS1 cipher name-mode); default aes-xts-plain64. */
  cipher?: CipherSpec | string;
  /** Byte offset of the data segment in the lower device (LUKS2 segment.offset). */
  dataOffset: number;
  /** Encryption unit: 512..4096, a power of two (LUKS2 segment.sector_size). */
  sectorSize: number;
  /** Added to every tweak, in 512-byte units (LUKS2 segment.iv_tweak); default 0. */
  ivTweak?: number;
  /** Pass whole-sector TRIM to the lower device (cryptsetup --allow-discards). */
  allowDiscards?: boolean;
  /** Cipher engine (default: defaultEngine()). */
  engine?: XtsEngineName;
  /** Where request buffers come from (default: fresh buffers). */
  buffers?: RequestBuffers;
}

/**
 * Native-engine requests up to this size are ciphered on the event loop: at 3-4.5 GB/s that
 * blocks it for well under a millisecond, less than a thread-pool hop costs in contention on a
 * small machine (docs/performance.md, Encryption). Larger requests go to the pool. Slower
 * ciphers state their own limit (SectorCipher.syncMax).
 */
const SYNC_MAX = 1024 * 1024;

export class EncryptedDevice implements BlockDevice {
  readonly size: number;
  readonly caps: BlockCaps;
  readonly blockSize: BlockSizes;
  private readonly lower: BlockDevice;
  private readonly cipher: SectorCipher;
  /** The data cipher, e.g. "aes-xts-plain64". */
  readonly cipherName: string;
  /** Requests up to this size are ciphered on the event loop by the native engine. */
  private readonly syncMax: number;
  /** The native engine's one-pass copy+encrypt/decrypt, when that engine is in use. */
  private readonly cryptInto: CryptInto | undefined;
  private readonly dataOffset: number;
  private readonly sectorSize: number;
  private readonly ivTweak: number;
  private readonly locks = new SectorLocks();
  private readonly buffers: RequestBuffers;
  private closed = false;

  constructor(lower: BlockDevice, opts: EncryptedDeviceOptions) {
    checkSectorSize(opts.sectorSize);
    const ivTweak = opts.ivTweak ?? 0;
    if (!Number.isSafeInteger(opts.dataOffset) || opts.dataOffset < 0 || opts.dataOffset > lower.size) {
      throw new RangeError(`dataOffset must be an integer from 0 to the lower size ${lower.size}, got ${opts.dataOffset}`);
    }
    if (opts.dataOffset % 512 !== 0) throw new RangeError(`dataOffset must be a multiple of 512, got ${opts.dataOffset}`);
    if (!Number.isSafeInteger(ivTweak) || ivTweak < 0) throw new RangeError(`ivTweak must be a non-negative integer, got ${ivTweak}`);
    this.lower = lower;
    this.dataOffset = opts.dataOffset;
    this.sectorSize = opts.sectorSize;
    // Any alignment works (partial sectors are read-modify-written); whole sectors cost least.
    this.blockSize = { minimum: 512, preferred: opts.sectorSize, maximum: lower.blockSize.maximum };
    this.ivTweak = ivTweak;
    this.buffers = opts.buffers ?? unpooled;
    this.size = Math.floor((lower.size - opts.dataOffset) / opts.sectorSize) * opts.sectorSize;
    const spec = typeof opts.cipher === 'object' ? opts.cipher : parseCipherSpec(opts.cipher ?? DEFAULT_CIPHER);
    this.cipher = createSectorCipher(spec, opts.key, opts.engine);
    this.cipherName = spec.name;
    this.syncMax = this.cipher.syncMax ?? SYNC_MAX;
    this.cryptInto = (this.cipher as Partial<Record<typeof cryptInto, CryptInto>>)[cryptInto];
    const lc = lower.caps;
    this.caps = {
      flush: lc.flush,
      fua: lc.fua,
      trim: (opts.allowDiscards ?? false) && lc.trim && !lc.readOnly,
      zeroes: false,
      multiConn: lc.multiConn,
      readOnly: lc.readOnly,
    };
  }

  /** Which cipher engine this device uses (for logs and benchmarks). */
  get engine(): EngineName {
    return this.cipher.engine;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.checkOpen();
    checkRange(this.size, offset, length, 'read');
    if (length === 0) return Buffer.alloc(0);
    const ss = this.sectorSize;
    const s0 = Math.floor(offset / ss);
    const s1 = Math.ceil((offset + length) / ss);
    const lock = this.locks.acquire(s0, s1, false);
    try {
      if (lock.ready) await lock.ready;
      const buf = await this.readSectors(s0, s1 - s0);
      const at = offset - s0 * ss;
      return at === 0 && length === buf.length ? buf : buf.subarray(at, at + length);
    } finally {
      lock.release();
    }
  }

  async write(offset: number, data: Buffer, fua = false, owned = false): Promise<void> {
    this.checkOpen();
    checkWritable(this, 'write');
    checkRange(this.size, offset, data.length, 'write');
    if (data.length === 0) return;
    const ss = this.sectorSize;
    const s0 = Math.floor(offset / ss);
    const s1 = Math.ceil((offset + data.length) / ss);
    const lock = this.locks.acquire(s0, s1, true);
    try {
      if (lock.ready) await lock.ready;
      await this.writeLocked(offset, data, fua, owned);
    } finally {
      lock.release();
    }
  }

  async writeZeroes(offset: number, length: number, fua = false): Promise<void> {
    this.checkOpen();
    checkWritable(this, 'write zeroes');
    checkRange(this.size, offset, length, 'write zeroes');
    if (length === 0) return;
    const ss = this.sectorSize;
    const lock = this.locks.acquire(Math.floor(offset / ss), Math.ceil((offset + length) / ss), true);
    try {
      if (lock.ready) await lock.ready;
      // writeLocked copies before encrypting, so the shared zero buffer stays zero.
      await writeZeroChunks((at, zeroes) => this.writeLocked(at, zeroes, fua), offset, length, ss);
    } finally {
      lock.release();
    }
  }

  async trim(offset: number, length: number): Promise<void> {
    this.checkOpen();
    checkWritable(this, 'trim');
    checkRange(this.size, offset, length, 'trim');
    if (!this.caps.trim) return; // discards not allowed: an advisory request, so succeed
    const ss = this.sectorSize;
    const s0 = Math.ceil(offset / ss);
    const s1 = Math.floor((offset + length) / ss);
    if (s1 <= s0) return;
    const lock = this.locks.acquire(s0, s1, true);
    try {
      if (lock.ready) await lock.ready;
      await this.lower.trim(this.dataOffset + s0 * ss, (s1 - s0) * ss);
    } finally {
      lock.release();
    }
  }

  async flush(): Promise<void> {
    this.checkOpen();
    // Covers every write already completed: those have finished their lower write.
    await this.lower.flush();
  }

  /** Waits for requests in flight, wipes the key and closes the lower device. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.locks.drain();
    } finally {
      this.cipher.destroy();
      await this.lower.close();
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new NbdcryptError('ECLOSED', 'encrypted device: already closed');
  }

  private tweak(sector: number): number {
    return (sector * this.sectorSize) / 512 + this.ivTweak;
  }

  /** Reads and decrypts `count` whole sectors from sector `s0`; the buffer is the caller's. */
  private async readSectors(s0: number, count: number): Promise<Buffer> {
    const ss = this.sectorSize;
    const view = this.cryptInto && count * ss <= this.syncMax ? this.lower.peek?.(this.dataOffset + s0 * ss, count * ss) : undefined;
    if (view) {
      // Decrypt straight out of the lower device's memory: one pass instead of copy + decrypt.
      const out = this.buffers.acquire(view.length);
      this.cryptInto!(false, view, out, this.tweak(s0), ss, true);
      return out;
    }
    const buf = await this.lower.read(this.dataOffset + s0 * ss, count * ss);
    if (buf.length !== count * ss) throw new NbdcryptError('EIO', `encrypted device: lower read returned ${buf.length} bytes, expected ${count * ss}`);
    await this.crypt(false, buf, s0);
    return buf;
  }

  private async crypt(encrypt: boolean, buf: Buffer, s0: number): Promise<void> {
    const c = this.cipher;
    const t = this.tweak(s0);
    if (c.engine === 'native' && buf.length <= this.syncMax) {
      if (encrypt) c.encrypt(buf, t, this.sectorSize);
      else c.decrypt(buf, t, this.sectorSize);
    } else if (encrypt) await c.encryptAsync(buf, t, this.sectorSize);
    else await c.decryptAsync(buf, t, this.sectorSize);
  }

  /**
   * Writes plaintext `data` at `offset`; the caller holds the lock on its sectors. An owned
   * buffer of whole sectors is encrypted in place; otherwise the ciphertext goes into a pooled
   * buffer. Either way the lower device is given the ciphertext (owned), so no copy of it is
   * made below (the remote client keeps it for replay until a flush).
   */
  private async writeLocked(offset: number, data: Buffer, fua: boolean, owned = false): Promise<void> {
    const ss = this.sectorSize;
    const end = offset + data.length;
    const s0 = Math.floor(offset / ss);
    const s1 = Math.ceil(end / ss);
    const count = s1 - s0;
    const headPartial = offset % ss !== 0;
    const tailPartial = end % ss !== 0;
    let buf: Buffer;
    if (!headPartial && !tailPartial && owned) {
      buf = data;
      await this.crypt(true, buf, s0);
    } else if (!headPartial && !tailPartial) {
      // A borrowed buffer is never encrypted in place: its owner may still use it.
      buf = this.buffers.acquire(data.length);
      if (this.cryptInto) {
        await this.cryptInto(true, data, buf, this.tweak(s0), ss, data.length <= this.syncMax);
      } else {
        data.copy(buf);
        await this.crypt(true, buf, s0);
      }
    } else {
      // Read-modify-write: decrypt the partial head/tail sectors, patch, re-encrypt all.
      if (count <= 2) {
        buf = await this.readSectors(s0, count);
      } else {
        buf = this.buffers.acquire(count * ss);
        const [head, tail] = await Promise.all([headPartial ? this.readSectors(s0, 1) : undefined, tailPartial ? this.readSectors(s1 - 1, 1) : undefined]);
        head?.copy(buf, 0);
        tail?.copy(buf, (count - 1) * ss);
        this.buffers.release(head);
        this.buffers.release(tail);
      }
      data.copy(buf, offset - s0 * ss);
      if (owned) this.buffers.release(data);
      await this.crypt(true, buf, s0);
    }
    await this.lower.write(this.dataOffset + s0 * ss, buf, fua, true);
  }
}
