/**
 * Cuts the byte stream of an SFTP channel into packets, whatever the chunk boundaries. The
 * length, type and id (and a DATA packet's data length) are gathered in a small fixed
 * buffer; a DATA payload is copied from the chunks straight to where the sink says; any
 * other packet is small and assembled whole. A length beyond MAX_PACKET, below the
 * smallest packet, or an unknown type is a WireError handed to the sink, after which
 * nothing more is parsed.
 */
import { FXP, Reader, WireError } from './sftp-wire.js';

/** Largest packet we accept (length field): OpenSSH's 256 KiB limit plus slack for headers. */
export const MAX_PACKET = 256 * 1024 + 1024;
/** Largest read we ask for, so that every DATA answer fits in MAX_PACKET. */
export const MAX_READ = 256 * 1024;

const ANSWERS = new Set<number>([FXP.VERSION, FXP.STATUS, FXP.HANDLE, FXP.DATA, FXP.NAME, FXP.ATTRS, FXP.EXTENDED_REPLY]);

export interface FrameSink {
  /** VERSION: `body` starts with the version number. */
  version(body: Reader): void;
  /** Any other answer; `body` follows the id. */
  answer(type: number, id: number, body: Reader): void;
  /** Where the `length` payload bytes of a DATA answer to `id` go. */
  dataTarget(id: number, length: number): { into: Buffer; at: number };
  dataDone(id: number, length: number): void;
  broken(e: WireError): void;
}

export class FrameParser {
  /** length(4) type(1) id(4), and for DATA its data length(4). */
  private readonly head = Buffer.alloc(13);
  private headFill = 0;
  private body: Buffer | undefined;
  private bodyFill = 0;
  /** DATA payload in progress. */
  private data: { id: number; into: Buffer; at: number; length: number; done: number } | undefined;
  private stopped = false;

  constructor(private readonly sink: FrameSink) {}

  stop(): void {
    this.stopped = true;
  }

  push(chunk: Buffer): void {
    try {
      let p = 0;
      while (p < chunk.length && !this.stopped) p = this.step(chunk, p);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      this.stopped = true;
      this.sink.broken(e);
    }
  }

  /** Consumes bytes of `chunk` from `p`; returns where it stopped. */
  private step(chunk: Buffer, p: number): number {
    if (this.data) {
      const d = this.data;
      const n = Math.min(d.length - d.done, chunk.length - p);
      chunk.copy(d.into, d.at + d.done, p, p + n);
      d.done += n;
      if (d.done === d.length) {
        this.data = undefined;
        this.sink.dataDone(d.id, d.length);
      }
      return p + n;
    }
    if (this.body) {
      const n = Math.min(this.body.length - this.bodyFill, chunk.length - p);
      chunk.copy(this.body, this.bodyFill, p, p + n);
      this.bodyFill += n;
      if (this.bodyFill === this.body.length) this.finishBody();
      return p + n;
    }
    const want = this.headFill >= 9 && this.head[4] === FXP.DATA ? 13 : 9;
    const n = Math.min(want - this.headFill, chunk.length - p);
    chunk.copy(this.head, this.headFill, p, p + n);
    this.headFill += n;
    if (this.headFill === want) this.finishHead();
    return p + n;
  }

  private finishHead(): void {
    const len = this.head.readUInt32BE(0);
    const type = this.head[4]!;
    if (len > MAX_PACKET) throw new WireError(`packet of ${len} bytes is longer than the ${MAX_PACKET} accepted`);
    if (len < 5) throw new WireError(`packet of ${len} bytes is shorter than a type and id`);
    if (!ANSWERS.has(type)) throw new WireError(`unknown packet type ${type}`);
    if (type === FXP.DATA) {
      if (this.headFill < 13) {
        if (len < 9) throw new WireError(`DATA packet of ${len} bytes has no data length`);
        return; // read the data length too
      }
      const id = this.head.readUInt32BE(5);
      const length = this.head.readUInt32BE(9);
      if (length !== len - 9) throw new WireError(`DATA packet of ${len} bytes says it holds ${length}`);
      this.headFill = 0;
      const t = this.sink.dataTarget(id, length);
      if (length === 0) return this.sink.dataDone(id, 0);
      this.data = { id, into: t.into, at: t.at, length, done: 0 };
      return;
    }
    this.body = Buffer.allocUnsafe(len - 1);
    this.head.copy(this.body, 0, 5, 9);
    this.bodyFill = 4;
    this.headFill = 0;
    if (this.bodyFill === this.body.length) this.finishBody();
  }

  private finishBody(): void {
    const body = this.body!;
    const type = this.head[4]!;
    this.body = undefined;
    if (type === FXP.VERSION) return this.sink.version(new Reader(body, 'VERSION'));
    this.sink.answer(type, body.readUInt32BE(0), new Reader(body.subarray(4), `type ${type}`));
  }
}
