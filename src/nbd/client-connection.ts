/**
 * One NBD connection in the transmission phase, client side: pipelined requests with
 * cookies, simple replies matched in any order. Header and payload leave in one corked
 * write (writev); READ payloads are sliced out of the received chunk when they lie inside
 * it and otherwise copied once, straight into the caller's destination buffer. It also
 * notices a remote that stops mid-way: `stalledFor` is how long requests have been waiting
 * with no byte moving in either direction (a reply header without its payload included).
 * Spec: docs/formats.md (NBD transmission).
 */
import type { Duplex } from 'node:stream';
import { NbdcryptError } from '../errors.js';
import { defaultRequestIo, type RequestIo } from '../block/request-io.js';
import { IdTable } from '../id-table.js';
import { decodeSimpleReply, writeRequestHeader } from './codec.js';
import { Cmd, REQUEST_HEADER_SIZE, SIMPLE_REPLY_MAGIC, SIMPLE_REPLY_SIZE } from './protocol.js';

/** Up to this many bytes sent in one turn are copied into one buffer (one write, one SSH packet run). */
const COALESCE_MAX = 256 * 1024;
/** Pieces at least this large are never copied. */
const COALESCE_PIECE = 64 * 1024;
/** Cookies are the IdTable's ids, which stay below 2^53; a larger one was never sent. */
const MAX_COOKIE = BigInt(Number.MAX_SAFE_INTEGER);

export interface WireRequest {
  type: number;
  flags: number;
  offset: number;
  length: number;
  /** WRITE payload (length bytes). */
  data?: Buffer;
  /** READ: where to put the payload; if absent the payload is sliced or allocated. */
  dest?: Buffer;
  destOffset?: number;
  /** Called once with the NBD error (0 = success) and, for a successful READ, the payload. */
  onReply(error: number, payload: Buffer | undefined): void;
}

export class NbdClientConnection {
  /** Requests sent and not yet answered, under their cookies (an IdTable, not a Map: see there). */
  private readonly inflight = new IdTable<WireRequest>();
  private hdr = Buffer.alloc(SIMPLE_REPLY_SIZE);
  private hdrHave = 0;
  // READ payload being received across chunks.
  private rx: { req: WireRequest; buf: Buffer; base: number; have: number } | undefined;
  private closed = false;
  /** Buffers sent this turn, written together at its end (see queueOut). */
  private outq: Buffer[] = [];
  private outBytes = 0;
  /** Bytes of write payload plus read payload outstanding; the client balances on this. */
  load = 0;
  /** When a byte last moved (received, or handed to the stream), or the first request of a busy spell left. */
  private lastProgress = Date.now();
  private readonly onWritten = (): void => {
    this.lastProgress = Date.now();
  };

  /** Called once when the stream ends or breaks, with the requests that got no reply, in send order. */
  onCloseHandler: (err: Error, unanswered: WireRequest[]) => void = () => {};
  /** Called after each reply (a slot became free). */
  onReplyHandler: () => void = () => {};

  constructor(
    private readonly stream: Duplex,
    leftover: Buffer,
    private readonly io: RequestIo = defaultRequestIo,
  ) {
    stream.on('data', (b: Buffer) => this.onData(b));
    stream.on('error', (e: Error) => this.shutdown(new NbdcryptError('EIO', `NBD connection failed: ${e.message}`, { cause: e })));
    stream.on('end', () => this.shutdown(new NbdcryptError('EIO', 'the remote end closed the NBD connection')));
    stream.on('close', () => this.shutdown(new NbdcryptError('EIO', 'the NBD connection closed')));
    if (leftover.length) this.onData(leftover);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Requests sent and not yet answered, in send order. */
  requests(): WireRequest[] {
    return this.inflight.inOrder();
  }

  get pending(): number {
    return this.inflight.size;
  }

  /** Milliseconds requests have waited with no byte moving; 0 when none waits. */
  stalledFor(now: number): number {
    return this.inflight.size > 0 || this.rx ? now - this.lastProgress : 0;
  }

  send(req: WireRequest): void {
    if (this.closed) throw new NbdcryptError('EIO', 'NBD connection already closed');
    if (this.inflight.size === 0 && !this.rx) this.lastProgress = Date.now();
    const cookie = BigInt(this.inflight.add(req));
    this.load += req.type === Cmd.WRITE || req.type === Cmd.READ ? req.length : 0;
    const h = Buffer.allocUnsafe(REQUEST_HEADER_SIZE);
    writeRequestHeader(h, 0, { flags: req.flags, type: req.type, cookie, offset: BigInt(req.offset), length: req.length });
    this.queueOut(h);
    if (req.type === Cmd.WRITE && req.data && req.data.length) this.queueOut(req.data);
  }

  /**
   * Everything sent in one event-loop turn leaves together at the turn's end: small pieces
   * (headers, 4 KiB payloads) are coalesced into one buffer, so a burst of requests costs one
   * socket write (or one SSH packet) instead of one each, whose cost dominates small random
   * I/O; large payloads go as they are.
   */
  private queueOut(b: Buffer): void {
    this.outq.push(b);
    this.outBytes += b.length;
    if (this.outq.length === 1) process.nextTick(() => this.flushOut());
  }

  private flushOut(): void {
    const q = this.outq;
    const total = this.outBytes;
    this.outq = [];
    this.outBytes = 0;
    if (this.closed || q.length === 0) return;
    if (q.length === 1) {
      this.stream.write(q[0]!, this.onWritten);
      return;
    }
    if (total <= COALESCE_MAX) {
      this.stream.write(Buffer.concat(q, total), this.onWritten);
      return;
    }
    // Runs of small pieces become one buffer each; large payloads are written without a copy.
    this.stream.cork();
    let run: Buffer[] = [];
    let runBytes = 0;
    const flushRun = (): void => {
      if (run.length) this.stream.write(run.length === 1 ? run[0]! : Buffer.concat(run, runBytes), this.onWritten);
      run = [];
      runBytes = 0;
    };
    for (const b of q) {
      if (b.length >= COALESCE_PIECE || runBytes + b.length > COALESCE_MAX) flushRun();
      if (b.length >= COALESCE_PIECE) this.stream.write(b, this.onWritten);
      else {
        run.push(b);
        runBytes += b.length;
      }
    }
    flushRun();
    this.stream.uncork();
  }

  /** Sends NBD_CMD_DISC (no reply) and ends the stream. */
  disconnect(): void {
    if (this.closed) return;
    const h = Buffer.allocUnsafe(REQUEST_HEADER_SIZE);
    writeRequestHeader(h, 0, { flags: 0, type: Cmd.DISC, cookie: 0n, offset: 0n, length: 0 });
    this.flushOut();
    this.stream.end(h);
  }

  destroy(err?: Error): void {
    this.shutdown(err ?? new NbdcryptError('EIO', 'NBD connection closed by the client'));
    this.stream.destroy();
  }

  private shutdown(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    // A READ whose payload was arriving is unanswered too (it left `inflight` with its header).
    const unanswered = [...(this.rx ? [this.rx.req] : []), ...this.inflight.clear()];
    this.rx = undefined;
    this.load = 0;
    this.stream.destroy();
    this.onCloseHandler(err, unanswered);
  }

  private protocolError(msg: string): void {
    this.destroy(new NbdcryptError('EPROTO', `NBD server broke the protocol: ${msg}`));
  }

  private finish(req: WireRequest, error: number, payload: Buffer | undefined): void {
    this.load -= req.type === Cmd.WRITE || req.type === Cmd.READ ? req.length : 0;
    req.onReply(error, payload);
    this.onReplyHandler();
  }

  private onData(chunk: Buffer): void {
    this.io.noteTransientBytes(chunk.length);
    this.lastProgress = Date.now();
    let pos = 0;
    while (pos < chunk.length && !this.closed) {
      const rx = this.rx;
      if (rx) {
        const take = Math.min(rx.req.length - rx.have, chunk.length - pos);
        chunk.copy(rx.buf, rx.base + rx.have, pos, pos + take);
        rx.have += take;
        pos += take;
        if (rx.have === rx.req.length) {
          this.rx = undefined;
          this.finish(rx.req, 0, rx.req.dest ? undefined : rx.buf);
        }
        continue;
      }
      let hb: Buffer;
      let at: number;
      if (this.hdrHave === 0 && chunk.length - pos >= SIMPLE_REPLY_SIZE) {
        hb = chunk;
        at = pos;
        pos += SIMPLE_REPLY_SIZE;
      } else {
        const take = Math.min(SIMPLE_REPLY_SIZE - this.hdrHave, chunk.length - pos);
        chunk.copy(this.hdr, this.hdrHave, pos, pos + take);
        this.hdrHave += take;
        pos += take;
        if (this.hdrHave < SIMPLE_REPLY_SIZE) return;
        this.hdrHave = 0;
        hb = this.hdr;
        at = 0;
      }
      const r = decodeSimpleReply(hb, at);
      if (r.magic !== SIMPLE_REPLY_MAGIC) return this.protocolError(`reply magic 0x${r.magic.toString(16)} (we never negotiate structured replies)`);
      const req = r.cookie <= MAX_COOKIE ? this.inflight.take(Number(r.cookie)) : undefined;
      if (!req) return this.protocolError(`reply for unknown cookie ${r.cookie}`);
      if (req.type !== Cmd.READ || r.error !== 0 || req.length === 0) {
        this.finish(req, r.error, req.type === Cmd.READ && r.error === 0 ? Buffer.alloc(0) : undefined);
        continue;
      }
      if (!req.dest && chunk.length - pos >= req.length) {
        // Whole payload inside this chunk: hand out a view, no copy.
        const payload = chunk.subarray(pos, pos + req.length);
        pos += req.length;
        this.finish(req, 0, payload);
        continue;
      }
      this.rx = req.dest
        ? { req, buf: req.dest, base: req.destOffset ?? 0, have: 0 }
        : { req, buf: this.io.buffers.acquire(req.length), base: 0, have: 0 };
    }
  }
}
