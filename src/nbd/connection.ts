/**
 * One client connection: the option phase (driving the pure `handshakeStep`), then the
 * transmission loop. Requests are parsed incrementally from the socket, dispatched to the
 * BlockDevice concurrently and answered with simple replies in completion order; replies
 * finished in the same event-loop turn go out in one corked writev. Reading stops while too
 * many bytes or requests are in flight or the client is not reading its replies.
 * Spec: docs/formats.md (NBD transmission).
 */
import type { Socket } from 'node:net';
import { NbdcryptError, isNbdcryptError } from '../errors.js';
import { log } from '../log.js';
import { noteTransientBytes } from '../transient-buffers.js';
import type { BlockDevice } from '../block/block-device.js';
import { requestBuffers } from '../block/buffer-pool.js';
import { decodeRequestHeader, encodeGreeting, writeSimpleReply } from './codec.js';
import { handshakeStep, initialHandshakeState, type ExportInfo, type HandshakeState } from './handshake.js';
import type { InFlightBudget } from './in-flight-budget.js';
import { InputBuffer } from './input-buffer.js';
import { CF, Cmd, Err, FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES, MAX_OPTION_LENGTH, OPTION_HEADER_SIZE, REQUEST_HEADER_SIZE, REQUEST_MAGIC, SIMPLE_REPLY_SIZE } from './protocol.js';
import { checkRequest, nbdErrorOf, type Verdict } from './request-check.js';

export interface ServedExport {
  info: ExportInfo;
  device: BlockDevice;
}

export interface ServerStats {
  connections: number;
  requests: number;
  bytesRead: number;
  bytesWritten: number;
  inFlight: number;
  errors: number;
}

export interface ConnectionLimits {
  maxInFlightBytes: number;
  maxInFlightRequests: number;
  /** Stop reading while more than this many reply bytes wait in the socket's buffer. */
  maxQueuedReplyBytes: number;
  handshakeTimeoutMs: number;
}

export const defaultLimits: ConnectionLimits = {
  maxInFlightBytes: 256 * 1024 * 1024,
  maxInFlightRequests: 1024,
  maxQueuedReplyBytes: 64 * 1024 * 1024,
  handshakeTimeoutMs: 60_000,
};

const ZERO_CHUNK = Buffer.alloc(1024 * 1024);
/** Queued reply bytes that trigger an immediate writev instead of waiting for the turn's end. */
const EARLY_FLUSH = 256 * 1024;

type Pending = { header: ReturnType<typeof decodeRequestHeader>; verdict: Extract<Verdict, { kind: 'run' | 'error' }> };

export class Connection {
  readonly closed: Promise<void>;
  private readonly input = new InputBuffer();
  private hsState: HandshakeState = initialHandshakeState;
  private served: ServedExport | undefined;
  private pending: Pending | undefined;
  private inFlight = 0;
  private inFlightBytes = 0;
  private waitingDrain = false;
  private corked = false;
  private corkedBytes = 0;
  private uncorkScheduled = false;
  /** Set once we stop accepting requests (DISC, fatal error, server shutdown). */
  private draining = false;
  private hsTimer: NodeJS.Timeout | undefined;
  /** Guards against re-entering pump() from a reply sent inside it. */
  private pumping = false;

  constructor(
    private readonly socket: Socket,
    private readonly exports: readonly ServedExport[],
    private readonly stats: ServerStats,
    private readonly limits: ConnectionLimits = defaultLimits,
    /** Shared by every connection of the server, if it bounds its total. */
    private readonly budget?: InFlightBudget,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => log.debug(`nbd connection: ${e.message}`));
    socket.on('end', () => this.shutdown('client closed the connection'));
    socket.once('close', () => {
      if (this.hsTimer) clearTimeout(this.hsTimer);
      this.budget?.forget(this.wake);
      this.input.clear();
    });
    this.hsTimer = setTimeout(() => {
      if (!this.served) this.abort('handshake timed out');
    }, limits.handshakeTimeoutMs);
    this.hsTimer.unref();
    socket.write(encodeGreeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES));
  }

  /** Stops reading requests, lets those in flight finish, then closes. */
  shutdown(reason: string): void {
    if (this.draining) return;
    this.draining = true;
    log.debug(`nbd connection closing: ${reason}`);
    this.socket.pause();
    this.input.clear();
    if (!this.served) {
      this.abort(reason);
      return;
    }
    this.maybeFinish();
  }

  /** Closes at once, dropping whatever is in flight. */
  abort(reason: string): void {
    this.draining = true;
    log.debug(`nbd connection aborted: ${reason}`);
    this.input.clear();
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    noteTransientBytes(chunk.length);
    if (this.draining) return;
    this.input.push(chunk);
    if (this.served) this.pump();
    else this.negotiate();
  }

  private negotiate(): void {
    const names = this.exports.map((e) => e.info);
    while (!this.draining && !this.served) {
      const step = handshakeStep(this.hsState, this.input.peek(this.nextMessageBytes()), names);
      this.input.skip(step.consumed);
      this.hsState = step.state;
      for (const r of step.replies) this.socket.write(r);
      switch (step.next.kind) {
        case 'need-more':
          return;
        case 'continue':
          break;
        case 'close':
          this.draining = true;
          log.debug(`nbd handshake: ${step.next.reason}`);
          this.input.clear();
          this.socket.end(() => this.socket.destroy());
          return;
        case 'transmit': {
          const name = step.next.exportName;
          this.served = this.exports.find((e) => e.info.name === name);
          if (this.hsTimer) clearTimeout(this.hsTimer);
          this.pump();
          return;
        }
      }
    }
  }

  /** Bytes to hand to handshakeStep: just the next message, so a burst of options costs linear time. */
  private nextMessageBytes(): number {
    const avail = this.input.available;
    if (this.hsState.stage === 'client-flags' || avail < OPTION_HEADER_SIZE) return Math.min(avail, OPTION_HEADER_SIZE);
    const length = this.input.peek(OPTION_HEADER_SIZE).readUInt32BE(12);
    return Math.min(avail, OPTION_HEADER_SIZE + Math.min(length, MAX_OPTION_LENGTH));
  }

  private blocked(): boolean {
    return (
      this.waitingDrain ||
      this.inFlightBytes >= this.limits.maxInFlightBytes ||
      this.inFlight >= this.limits.maxInFlightRequests ||
      (this.budget?.spent ?? false)
    );
  }

  /**
   * Resumes parsing once the server-wide budget has room again. pump() re-registers us if
   * another connection woken first has spent the budget again; returning early here instead
   * lost the wake-up and left this connection paused for good (nbdcopy hung at 16 MiB).
   */
  private readonly wake = (): void => {
    if (!this.draining && this.served) this.pump();
  };

  /** Parses and dispatches every complete request buffered, unless back-pressure says wait. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      this.pumpLoop();
    } finally {
      this.pumping = false;
    }
  }

  private pumpLoop(): void {
    const served = this.served!;
    const ctx = { size: served.info.size, transmissionFlags: served.info.transmissionFlags };
    while (!this.draining) {
      if (this.blocked()) {
        this.socket.pause();
        if (this.budget?.spent) this.budget.waitFor(this.wake);
        return;
      }
      if (!this.pending) {
        if (this.input.available < REQUEST_HEADER_SIZE) break;
        const header = decodeRequestHeader(this.input.take(REQUEST_HEADER_SIZE));
        if (header.magic !== REQUEST_MAGIC) {
          this.stats.errors++;
          // The stream is out of step from here on, but the requests before it were sound:
          // answer them, then close (a hard close could cut a read reply in half).
          this.shutdown(`bad request magic 0x${header.magic.toString(16)}`);
          return;
        }
        const verdict = checkRequest(header, ctx);
        if (verdict.kind === 'disconnect') {
          this.shutdown('client sent NBD_CMD_DISC');
          return;
        }
        if (verdict.kind === 'close') {
          this.stats.errors++;
          if (verdict.error !== undefined) this.reply(header.cookie, verdict.error);
          this.shutdown(verdict.reason);
          return;
        }
        this.pending = { header, verdict };
      }
      const { header, verdict } = this.pending;
      if (this.input.available < verdict.payload) break;
      const payload = header.type === Cmd.WRITE ? this.input.take(verdict.payload) : undefined;
      this.pending = undefined;
      this.stats.requests++;
      if (verdict.kind === 'error') {
        this.stats.errors++;
        this.reply(header.cookie, verdict.error);
        continue;
      }
      this.dispatch(served, header, verdict.offset, payload);
    }
    if (!this.draining) this.socket.resume();
  }

  private dispatch(served: ServedExport, h: Pending['header'], offset: number, payload: Buffer | undefined): void {
    const dev = served.device;
    const fua = (h.flags & CF.FUA) !== 0;
    const cost = h.type === Cmd.READ || h.type === Cmd.WRITE ? h.length : 0;
    this.inFlight++;
    this.inFlightBytes += cost;
    this.budget?.take(cost);
    this.stats.inFlight++;
    let op: Promise<Buffer | void>;
    try {
      switch (h.type) {
        case Cmd.READ:
          op = dev.read(offset, h.length);
          break;
        case Cmd.WRITE:
          // Given, not lent: the device may encrypt it in place and releases it to the pool.
          op = dev.write(offset, payload!, fua, true);
          break;
        case Cmd.FLUSH:
          op = dev.flush();
          break;
        case Cmd.TRIM:
          op = dev.trim(offset, h.length).then(() => (fua ? dev.flush() : undefined));
          break;
        case Cmd.WRITE_ZEROES:
          op = this.writeZeroes(dev, offset, h.length, fua, (h.flags & CF.FAST_ZERO) !== 0);
          break;
        default: // CACHE: a prefetch hint; the range was checked, nothing to warm.
          op = Promise.resolve();
      }
    } catch (e) {
      op = Promise.reject(e);
    }
    op.then(
      (data) => {
        this.finish();
        if (h.type === Cmd.READ) {
          if (!(data instanceof Buffer) || data.length !== h.length) {
            this.stats.errors++;
            log.warn(`read of ${h.length} bytes at ${offset} returned ${data instanceof Buffer ? data.length : 'no'} bytes; answering EIO`);
            this.release(cost);
            this.reply(h.cookie, Err.EIO);
          } else {
            this.stats.bytesRead += h.length;
            // The read's bytes stay counted until its reply has left for the kernel: a client
            // slow to read its replies must not let them pile up beyond the budget.
            this.reply(h.cookie, 0, data, cost);
          }
        } else {
          if (h.type === Cmd.WRITE) this.stats.bytesWritten += h.length;
          this.release(cost);
          this.reply(h.cookie, 0);
        }
      },
      (e: unknown) => {
        this.finish();
        this.release(cost);
        this.stats.errors++;
        const modifies = h.type === Cmd.WRITE || h.type === Cmd.TRIM || h.type === Cmd.WRITE_ZEROES;
        const error = nbdErrorOf(e, modifies);
        const msg = e instanceof Error ? e.message : String(e);
        if (error === Err.EIO) log.warn(`nbd command ${h.type} at ${offset}+${h.length} failed: ${msg}`);
        else log.debug(`nbd command ${h.type} at ${offset}+${h.length} answered errno ${error}: ${msg}`);
        this.reply(h.cookie, error);
      },
    );
  }

  private async writeZeroes(dev: BlockDevice, offset: number, length: number, fua: boolean, fast: boolean): Promise<void> {
    if (!dev.caps.zeroes) {
      // FAST_ZERO asks us to fail rather than be as slow as a write; the client then writes.
      if (fast) throw new NbdcryptError('ENOTSUP', 'write zeroes: the device has no fast zeroing');
    }
    try {
      await dev.writeZeroes(offset, length, fua);
    } catch (e) {
      if (!isNbdcryptError(e, 'ENOTSUP')) throw e;
      for (let at = 0; at < length; at += ZERO_CHUNK.length) {
        const n = Math.min(ZERO_CHUNK.length, length - at);
        await dev.write(offset + at, ZERO_CHUNK.subarray(0, n));
      }
      if (fua) await dev.flush();
    }
  }

  private finish(): void {
    this.inFlight--;
    this.stats.inFlight--;
  }

  /** Gives back a request's bytes to this connection's and the server's budget. */
  private release(bytes: number): void {
    if (bytes === 0) return;
    this.inFlightBytes -= bytes;
    this.budget?.give(bytes);
  }

  /**
   * Once a READ reply's data has been written: its buffer goes back to the pool, its bytes to
   * the budget, and reading resumes if that was what blocked.
   */
  private releaseAfterWrite(data: Buffer, bytes: number): () => void {
    return () => {
      requestBuffers.release(data);
      this.release(bytes);
      this.wake();
    };
  }

  /**
   * Queues a simple reply. Replies finished in the same turn leave in one writev, but once
   * EARLY_FLUSH bytes are queued they go at once, so big reads stream while later ones copy.
   * `dataBytes` of the budget are given back once `data` is written (or cannot be).
   */
  private reply(cookie: bigint, error: number, data?: Buffer, dataBytes = 0): void {
    const s = this.socket;
    if (s.destroyed || !s.writable) this.release(dataBytes);
    else {
      if (!this.corked) {
        this.corked = true;
        s.cork();
        if (!this.uncorkScheduled) {
          this.uncorkScheduled = true;
          process.nextTick(() => {
            this.uncorkScheduled = false;
            this.uncork();
          });
        }
      }
      const header = Buffer.allocUnsafe(SIMPLE_REPLY_SIZE);
      writeSimpleReply(header, 0, { error, cookie });
      s.write(header);
      this.corkedBytes += SIMPLE_REPLY_SIZE;
      if (data && data.length > 0) {
        s.write(data, this.releaseAfterWrite(data, dataBytes));
        this.corkedBytes += data.length;
      } else this.release(dataBytes);
      if (this.corkedBytes >= EARLY_FLUSH) this.uncork();
    }
    this.afterReply();
  }

  private uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.corkedBytes = 0;
    const s = this.socket;
    s.uncork();
    if (!this.waitingDrain && !s.destroyed && s.writableLength > this.limits.maxQueuedReplyBytes) {
      this.waitingDrain = true;
      s.once('drain', () => {
        this.waitingDrain = false;
        this.afterReply();
      });
    }
  }

  private afterReply(): void {
    if (this.draining) this.maybeFinish();
    else if (this.served && !this.blocked()) this.pump();
  }

  private maybeFinish(): void {
    if (this.inFlight > 0 || this.socket.destroyed) return;
    // Flush queued replies first (end() waits for them), then close both directions.
    this.uncork();
    this.socket.end(() => this.socket.destroy());
  }
}
