/**
 * A BlockDevice over a regular file or a block device, with positional reads and writes on
 * one descriptor: what the page cache can serve at once is read or written on the spot
 * (page-cache-io.ts), the rest on the libuv thread pool, so requests overlap. A regular file is
 * read without kernel readahead (adviseNoReadahead, page-cache-io.ts). The FileHandle owns the
 * descriptor (open, stat, fdatasync, close); the data path uses callback fs.read/fs.write on
 * its fd, which costs measurably less per 4 KiB request than FileHandle.read. flush and FUA
 * are fdatasync. TRIM punches a hole in a regular file (fallocate through the native addon,
 * punch-hole.c), so the range reads back as zeroes and its blocks return to the filesystem;
 * without the addon, on a block device or a filesystem that cannot punch holes it is the hint
 * the NBD spec allows it to be and does nothing (writing zeroes instead would un-sparse the
 * file, the opposite of a discard). Zeroing writes real zeroes (caps.zeroes = false, so
 * FAST_ZERO requests fail fast as they should).
 */
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { constants, read as fsRead, write as fsWrite } from 'node:fs';
import { constants as os } from 'node:os';
import { loadNative, type NativeAddon } from '../native-addon.js';
import { NbdcryptError } from '../errors.js';
import { writeZeroChunks } from './write-zeroes.js';
import { checkRange, checkWritable, DEFAULT_BLOCK_SIZES, type BlockCaps, type BlockDevice } from './block-device.js';
import { unpooled, type RequestBuffers } from './buffer-pool.js';
import { adviseNoReadahead, pageCacheIo, type PageCacheIo } from './page-cache-io.js';
import { WriteBatcher } from './write-batcher.js';

/**
 * Transfers up to this size take the shortcuts: the page cache on the event loop, small writes
 * batched into one pool job. Larger ones get a pool job each, so their copies run off the event
 * loop and in parallel.
 */
const SMALL_IO_BYTES = 128 * 1024;

/**
 * The shortcuts a FileDevice takes, each on unless turned off (to compare, or to rule one
 * out); the CLI sets them from its environment switches (docs/environment.md).
 */
export interface FileFastPaths {
  /** Page-cache hits on the event loop (page-cache-io.ts). */
  nowaitIo?: boolean;
  /** Small writes of one turn in one thread-pool job (write-batcher.ts). */
  writeBatch?: boolean;
  /** Leave the kernel's readahead on for a regular file (default off: adviseNoReadahead). */
  readahead?: boolean;
}

export interface FileDeviceOptions {
  readOnly?: boolean;
  /** If the file does not exist, create it sparse with this size. */
  createSize?: number;
  fastPaths?: FileFastPaths;
  /** Where read results come from (default: fresh buffers). */
  buffers?: RequestBuffers;
}

export class FileDevice implements BlockDevice {
  readonly caps: BlockCaps;
  readonly blockSize = DEFAULT_BLOCK_SIZES;
  private closed = false;
  /** Page-cache hits without the thread pool (page-cache-io.ts), when available. */
  private readonly nowait: PageCacheIo | undefined;
  /** Small writes of one turn in one thread-pool job (write-batcher.ts), when available. */
  private readonly batcher: WriteBatcher | undefined;
  /** TRIM for a regular file (native punchHole); undefined: TRIM does nothing. */
  private punchHole: NativeAddon['punchHole'] | undefined;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly size: number,
    readonly isBlockDevice: boolean,
    readOnly: boolean,
    fast: FileFastPaths,
    private readonly buffers: RequestBuffers,
  ) {
    this.caps = { flush: true, fua: true, trim: true, zeroes: false, multiConn: true, readOnly };
    this.nowait = fast.nowaitIo === false ? undefined : pageCacheIo();
    this.batcher = readOnly || fast.writeBatch === false ? undefined : WriteBatcher.for(fh.fd);
    const a = readOnly || isBlockDevice ? undefined : loadNative();
    if (a && typeof a.punchHole === 'function') this.punchHole = (fd, offset, length) => a.punchHole(fd, offset, length);
  }

  static async open(path: string, opts: FileDeviceOptions = {}): Promise<FileDevice> {
    const readOnly = opts.readOnly ?? false;
    let fh: FileHandle;
    try {
      if (opts.createSize !== undefined && !readOnly) {
        fh = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
        const st = await fh.stat();
        if (st.isFile() && st.size === 0 && opts.createSize > 0) await fh.truncate(opts.createSize);
      } else {
        fh = await open(path, readOnly ? constants.O_RDONLY : constants.O_RDWR);
      }
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? String(e);
      throw new NbdcryptError('EIO', `cannot open ${path} (${why}); check the path and its permissions`, { cause: e });
    }
    try {
      const st = await fh.stat();
      let size: number;
      if (st.isFile()) {
        size = st.size;
        if (opts.fastPaths?.readahead !== true) adviseNoReadahead(fh.fd);
      } else if (st.isBlockDevice()) size = await blockDeviceSize(st.rdev, path);
      else throw new NbdcryptError('EUSAGE', `${path} is neither a regular file nor a block device`);
      return new FileDevice(path, fh, size, st.isBlockDevice(), readOnly, opts.fastPaths ?? {}, opts.buffers ?? unpooled);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.checkOpen();
    checkRange(this.size, offset, length, 'read');
    const buf = this.buffers.acquire(length);
    let done = (length > 0 && length <= SMALL_IO_BYTES && this.nowait?.read(this.fh.fd, buf, offset)) || 0;
    while (done < length) {
      const bytesRead = await new Promise<number>((resolve, reject) =>
        fsRead(this.fh.fd, buf, done, length - done, offset + done, (e, n) => (e ? reject(e) : resolve(n))),
      );
      if (bytesRead === 0) {
        // The file shrank under us: the missing tail reads as zeroes would hide that, so fail.
        throw new NbdcryptError('EIO', `read: ${this.path} ended at ${offset + done}, before its size ${this.size} at open; was it truncated?`);
      }
      done += bytesRead;
    }
    return buf;
  }

  async write(offset: number, data: Buffer, fua = false, owned = false): Promise<void> {
    this.checkOpen();
    checkWritable(this, 'write');
    checkRange(this.size, offset, data.length, 'write');
    await this.writeAll(offset, data);
    if (owned) this.buffers.release(data);
    if (fua) await this.fh.datasync();
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (!this.caps.readOnly) await this.fh.datasync();
  }

  async trim(offset: number, length: number): Promise<void> {
    this.checkOpen();
    checkWritable(this, 'trim');
    checkRange(this.size, offset, length, 'trim');
    if (length === 0 || !this.punchHole) return;
    const r = await this.punchHole(this.fh.fd, offset, length);
    if (r === -os.errno.EOPNOTSUPP) this.punchHole = undefined; // this filesystem cannot: a hint from now on
    else if (r < 0) throw new NbdcryptError('EIO', `file device ${this.path}: trim of ${length} bytes at ${offset} failed (errno ${-r})`);
  }

  async writeZeroes(offset: number, length: number, fua = false): Promise<void> {
    this.checkOpen();
    checkWritable(this, 'write zeroes');
    checkRange(this.size, offset, length, 'write zeroes');
    await writeZeroChunks((at, zeroes) => this.writeAll(at, zeroes), offset, length);
    if (fua) await this.fh.datasync();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  private async writeAll(offset: number, data: Buffer): Promise<void> {
    const small = data.length > 0 && data.length <= SMALL_IO_BYTES;
    let done = (small && this.nowait?.write(this.fh.fd, data, offset)) || 0;
    if (done < data.length && small && this.batcher) {
      // A negative result (an error) leaves the write to fs.write, which reports it in Node's words.
      done += Math.max(0, await this.batcher.write(done === 0 ? data : data.subarray(done), offset + done));
    }
    while (done < data.length) {
      const bytesWritten = await new Promise<number>((resolve, reject) =>
        fsWrite(this.fh.fd, data, done, data.length - done, offset + done, (e, n) => (e ? reject(e) : resolve(n))),
      );
      done += bytesWritten;
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new NbdcryptError('ECLOSED', `file device ${this.path}: already closed`);
  }
}

/** Size of a block device from sysfs (no ioctl from JS): /sys/dev/block/MAJ:MIN/size is in 512-byte units. */
async function blockDeviceSize(rdev: number, path: string): Promise<number> {
  const major = ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  const sys = `/sys/dev/block/${major}:${minor}/size`;
  try {
    const sectors = Number((await readFile(sys, 'utf8')).trim());
    if (!Number.isSafeInteger(sectors)) throw new Error(`unexpected content`);
    return sectors * 512;
  } catch (e) {
    throw new NbdcryptError('EIO', `cannot determine the size of block device ${path} from ${sys}: ${(e as Error).message}`);
  }
}

/** True if `path` exists (for callers deciding whether to create). */
export async function pathExists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
