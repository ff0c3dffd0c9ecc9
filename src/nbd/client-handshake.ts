/**
 * Client side of the fixed-newstyle NBD handshake: greeting, client flags, then OPT_GO with
 * the export name asking for NBD_INFO_BLOCK_SIZE, falling back to OPT_EXPORT_NAME when the
 * server answers ERR_UNSUP (as nbd-client 3.24 does). One bounded read at a time, one
 * protocol step each. Spec: docs/formats.md (NBD handshake).
 */
import type { Duplex } from 'node:stream';
import { NbdcryptError } from '../errors.js';
import {
  decodeGreeting,
  decodeInfoReply,
  decodeOptionReplyHeader,
  encodeInfoRequest,
  encodeOptionHeader,
  type BlockSizeInfo,
} from './codec.js';
import {
  CLIENT_FIXED_NEWSTYLE,
  CLIENT_NO_ZEROES,
  FLAG_FIXED_NEWSTYLE,
  FLAG_NO_ZEROES,
  IHAVEOPT,
  Info,
  MAX_OPTION_LENGTH,
  MAX_PAYLOAD,
  NBDMAGIC,
  OPTION_REPLY_HEADER_SIZE,
  OPT_REPLY_MAGIC,
  Opt,
  Rep,
  isRepError,
} from './protocol.js';

export interface ExportInfo {
  size: number;
  /** Transmission flags (TF). */
  flags: number;
  blockSize: BlockSizeInfo;
  /** Bytes the server sent after the handshake (normally none). */
  leftover: Buffer;
}

/** Buffers a stream's data so the handshake can read exact byte counts, then hands the rest over. */
class ByteReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly onData = (b: Buffer): void => {
    this.chunks.push(b);
    this.have += b.length;
    this.pump();
  };
  private readonly onEnd = (): void => this.fail(new NbdcryptError('EPROTO', 'the NBD server closed the connection during the handshake'));
  private readonly onError = (e: Error): void => this.fail(new NbdcryptError('ECONNECT', `the connection failed during the NBD handshake: ${e.message}`, { cause: e }));

  constructor(private readonly stream: Duplex) {
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onError);
  }

  read(n: number): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.pump();
    });
  }

  /** Stops listening and returns whatever was received past the last read. */
  detach(): Buffer {
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream.off('error', this.onError);
    return Buffer.concat(this.chunks);
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(e);
  }

  private pump(): void {
    const w = this.waiter;
    if (!w || this.have < w.n) return;
    this.waiter = undefined;
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = all.length > w.n ? [all.subarray(w.n)] : [];
    this.have -= w.n;
    w.resolve(all.subarray(0, w.n));
  }
}

const DEFAULT_BLOCK_SIZE: BlockSizeInfo = { minimum: 1, preferred: 4096, maximum: MAX_PAYLOAD };

/** Runs the handshake on a fresh stream; rejects with EPROTO, ENOEXPORT or ECONNECT. */
export async function clientHandshake(stream: Duplex, exportName: string, where: string): Promise<ExportInfo> {
  const r = new ByteReader(stream);
  try {
    const g = decodeGreeting(await r.read(18));
    if (g.magic !== NBDMAGIC || g.optMagic !== IHAVEOPT) {
      throw new NbdcryptError('EPROTO', `${where} is not a newstyle NBD server (bad greeting magic); check the port or socket`);
    }
    if (!(g.flags & FLAG_FIXED_NEWSTYLE)) {
      throw new NbdcryptError('EPROTO', `${where} does not speak fixed-newstyle NBD; upgrade the server`);
    }
    const noZeroes = (g.flags & FLAG_NO_ZEROES) !== 0;
    const cflags = Buffer.alloc(4);
    cflags.writeUInt32BE(CLIENT_FIXED_NEWSTYLE | (noZeroes ? CLIENT_NO_ZEROES : 0));
    const go = encodeInfoRequest(exportName, [Info.BLOCK_SIZE]);
    stream.write(Buffer.concat([cflags, encodeOptionHeader(Opt.GO, go.length), go]));

    let size: bigint | undefined;
    let flags = 0;
    let blockSize = DEFAULT_BLOCK_SIZE;
    for (;;) {
      const h = decodeOptionReplyHeader(await r.read(OPTION_REPLY_HEADER_SIZE));
      if (h.magic !== OPT_REPLY_MAGIC || h.option !== Opt.GO) {
        throw new NbdcryptError('EPROTO', `${where} sent a malformed reply to NBD_OPT_GO`);
      }
      if (h.length > MAX_OPTION_LENGTH) throw new NbdcryptError('EPROTO', `${where} sent an oversized option reply (${h.length} bytes)`);
      const data = h.length > 0 ? await r.read(h.length) : Buffer.alloc(0);
      if (h.type === Rep.INFO) {
        const info = decodeInfoReply(data);
        if (!info) throw new NbdcryptError('EPROTO', `${where} sent a malformed NBD_REP_INFO`);
        if (info.type === Info.EXPORT && 'size' in info) {
          size = info.size;
          flags = info.flags;
        } else if (info.type === Info.BLOCK_SIZE && 'minimum' in info) {
          blockSize = checkBlockSize(info, where);
        }
        continue;
      }
      if (h.type === Rep.ACK) break;
      if (h.type === Rep.ERR_UNSUP) return await exportNameFallback(stream, r, exportName, noZeroes, where);
      const msg = data.length ? `: ${data.toString('utf8').slice(0, 200)}` : '';
      if (h.type === Rep.ERR_UNKNOWN) {
        throw new NbdcryptError('ENOEXPORT', `${where} has no export named '${exportName}'${msg}; check the export name in the target`);
      }
      if (isRepError(h.type)) {
        throw new NbdcryptError('EPROTO', `${where} refused export '${exportName}' (NBD_OPT_GO error 0x${h.type.toString(16)})${msg}`);
      }
      throw new NbdcryptError('EPROTO', `${where} sent unexpected option reply type ${h.type} to NBD_OPT_GO`);
    }
    if (size === undefined) throw new NbdcryptError('EPROTO', `${where} acknowledged NBD_OPT_GO without NBD_INFO_EXPORT`);
    return { size: checkSize(size, where), flags, blockSize, leftover: r.detach() };
  } catch (e) {
    r.detach();
    throw e;
  }
}

async function exportNameFallback(stream: Duplex, r: ByteReader, exportName: string, noZeroes: boolean, where: string): Promise<ExportInfo> {
  const name = Buffer.from(exportName, 'utf8');
  stream.write(Buffer.concat([encodeOptionHeader(Opt.EXPORT_NAME, name.length), name]));
  let b: Buffer;
  try {
    b = await r.read(noZeroes ? 10 : 134);
  } catch (e) {
    // The only error path of EXPORT_NAME is a closed connection.
    throw new NbdcryptError('ENOEXPORT', `${where} closed the connection on NBD_OPT_EXPORT_NAME '${exportName}': the export probably does not exist`, { cause: e });
  }
  return { size: checkSize(b.readBigUInt64BE(0), where), flags: b.readUInt16BE(8), blockSize: DEFAULT_BLOCK_SIZE, leftover: r.detach() };
}

function checkSize(size: bigint, where: string): number {
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new NbdcryptError('EPROTO', `${where} reports an export size ${size} beyond 2^53 bytes`);
  return Number(size);
}

function isPow2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function checkBlockSize(b: BlockSizeInfo, where: string): BlockSizeInfo {
  if (!isPow2(b.minimum) || b.minimum > 65536 || !isPow2(b.preferred) || b.maximum < b.preferred) {
    throw new NbdcryptError('EPROTO', `${where} sent invalid block sizes min ${b.minimum} preferred ${b.preferred} max ${b.maximum}`);
  }
  // 0xffffffff means "no limit"; we never send more than MAX_PAYLOAD anyway.
  return { minimum: b.minimum, preferred: b.preferred, maximum: Math.min(b.maximum, MAX_PAYLOAD) };
}
