/**
 * The transmission phase of one connection: requests are parsed incrementally from the input
 * buffer, dispatched to the BlockDevice concurrently and answered through the ReplyWriter in
 * completion order. Reading stops while too many bytes or requests are in flight, the
 * client is not reading its replies, or the server-wide budget (in-flight-budget.ts) does not
 * admit the next request yet: a request is admitted once its header is parsed, before its
 * payload is read, and holds its bytes until its reply has left.
 * Spec: docs/formats.md (NBD transmission).
 */
import type { Socket } from 'node:net';
import { log } from '../log.js';
import { unpooled, type RequestBuffers } from '../block/buffer-pool.js';
import { decodeRequestHeader } from './codec.js';
import type { BudgetAccount, InFlightBudget } from './in-flight-budget.js';
import type { InputBuffer } from './input-buffer.js';
import { ReplyWriter } from './reply-writer.js';
import { Cmd, Err, REQUEST_HEADER_SIZE, REQUEST_MAGIC } from './protocol.js';
import { checkRequest, nbdErrorOf, type Verdict } from './request-check.js';
import { runCommand } from './run-command.js';
import type { ConnectionLimits, ServedExport, ServerStats } from './served-export.js';

type Pending = {
  header: ReturnType<typeof decodeRequestHeader>;
  verdict: Extract<Verdict, { kind: 'run' | 'error' }>;
  /** Bytes the request holds from admission until its reply has left (READ and WRITE). */
  cost: number;
  admitted: boolean;
};

/** What the transmission loop needs from the connection that owns it. */
export interface TransmissionHost {
  /** Stop taking requests, answer those in flight, then close. */
  shutdown(reason: string): void;
}

export class Transmission {
  private pending: Pending | undefined;
  private inFlight = 0;
  private inFlightBytes = 0;
  /** Set once no more requests are taken (DISC, a fatal request, shutdown). */
  private stopped = false;
  private onIdle: (() => void) | undefined;
  /** Guards against re-entering pump() from a reply sent inside it. */
  private pumping = false;
  private readonly writer: ReplyWriter;
  /** This connection's part of the server-wide budget, if the server has one. */
  private readonly account: BudgetAccount | undefined;
  private readonly ctx: { size: number; transmissionFlags: number };

  constructor(
    private readonly socket: Socket,
    private readonly input: InputBuffer,
    private readonly served: ServedExport,
    private readonly stats: ServerStats,
    private readonly limits: ConnectionLimits,
    private readonly host: TransmissionHost,
    /** Shared by every connection of the server, if it bounds its total. */
    budget?: InFlightBudget,
    /** Where READ reply buffers go back once written. */
    private readonly buffers: RequestBuffers = unpooled,
  ) {
    this.account = budget?.open(this.wake);
    this.writer = new ReplyWriter(socket, limits.maxQueuedReplyBytes, () => this.afterReply());
    this.ctx = { size: served.info.size, transmissionFlags: served.info.transmissionFlags };
  }

  /**
   * Takes no more requests; `onIdle` runs once nothing is in flight (at once if nothing is),
   * after the replies queued so far were handed to the socket.
   */
  stop(onIdle: () => void): void {
    this.stopped = true;
    this.onIdle = onIdle;
    this.dropPending();
    this.account?.close();
    this.maybeIdle();
  }

  /** The socket closed: nobody is waiting for budget on our behalf any more. */
  closed(): void {
    this.dropPending();
    this.account?.close();
  }

  /** A request admitted but never dispatched gives its bytes back. */
  private dropPending(): void {
    if (this.pending?.admitted) this.release(this.pending.cost);
    this.pending = undefined;
  }

  /**
   * Resumes parsing once a reply has left or the budget may admit the waiting request.
   * pump() asks the budget again and waits again if it still says no: a wake-up must never be
   * dropped, or this connection stays paused for good.
   */
  private readonly wake = (): void => {
    if (!this.stopped) this.pump();
  };

  private blocked(): boolean {
    return (
      this.writer.waitingDrain ||
      this.inFlightBytes >= this.limits.maxInFlightBytes ||
      this.inFlight >= this.limits.maxInFlightRequests
    );
  }

  /** Parses and dispatches every complete request buffered, unless back-pressure says wait. */
  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      this.pumpLoop();
    } finally {
      this.pumping = false;
    }
  }

  private pumpLoop(): void {
    while (!this.stopped) {
      if (!this.pending) {
        if (this.blocked()) {
          this.socket.pause();
          return;
        }
        if (this.input.available < REQUEST_HEADER_SIZE) break;
        const header = decodeRequestHeader(this.input.take(REQUEST_HEADER_SIZE));
        if (header.magic !== REQUEST_MAGIC) {
          this.stats.errors++;
          // The stream is out of step from here on, but the requests before it were sound:
          // answer them, then close (a hard close could cut a read reply in half).
          this.host.shutdown(`bad request magic 0x${header.magic.toString(16)}`);
          return;
        }
        const verdict = checkRequest(header, this.ctx);
        if (verdict.kind === 'disconnect') {
          this.host.shutdown('client sent NBD_CMD_DISC');
          return;
        }
        if (verdict.kind === 'close') {
          this.stats.errors++;
          if (verdict.error !== undefined) this.reply(header.cookie, verdict.error);
          this.host.shutdown(verdict.reason);
          return;
        }
        const cost = verdict.kind === 'run' && (header.type === Cmd.READ || header.type === Cmd.WRITE) ? header.length : 0;
        this.pending = { header, verdict, cost, admitted: false };
      }
      const p = this.pending;
      if (!p.admitted) {
        if (p.cost > 0 && this.account && !this.account.admits(p.cost)) {
          this.socket.pause();
          this.account.waitForRoom();
          return;
        }
        p.admitted = true;
        this.inFlightBytes += p.cost;
        this.account?.take(p.cost);
      }
      const { header, verdict, cost } = p;
      if (this.input.available < verdict.payload) break;
      const payload = header.type === Cmd.WRITE ? this.input.take(verdict.payload) : undefined;
      this.pending = undefined;
      this.stats.requests++;
      if (verdict.kind === 'error') {
        this.stats.errors++;
        this.reply(header.cookie, verdict.error);
        continue;
      }
      this.dispatch(header, verdict.offset, payload, cost);
    }
    if (!this.stopped) this.socket.resume();
  }

  private dispatch(h: Pending['header'], offset: number, payload: Buffer | undefined, cost: number): void {
    this.inFlight++;
    this.stats.inFlight++;
    runCommand(this.served.device, h, offset, payload).then(
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
            // The read's bytes stay counted until its reply has left for the client: a client
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

  private finish(): void {
    this.inFlight--;
    this.stats.inFlight--;
  }

  /** Gives back a request's bytes to this connection's and the server's budget. */
  private release(bytes: number): void {
    if (bytes === 0) return;
    this.inFlightBytes -= bytes;
    this.account?.give(bytes);
  }

  /** Queues a reply; `dataBytes` are given back once `data` has been written (or cannot be). */
  private reply(cookie: bigint, error: number, data?: Buffer, dataBytes = 0): void {
    if (data) {
      this.writer.send(cookie, error, data, () => {
        this.buffers.release(data);
        this.release(dataBytes);
        this.wake();
      });
    } else {
      this.writer.send(cookie, error);
      this.release(dataBytes);
    }
    this.afterReply();
  }

  private afterReply(): void {
    if (this.stopped) this.maybeIdle();
    else if (!this.blocked()) this.pump();
  }

  private maybeIdle(): void {
    if (this.inFlight > 0 || !this.onIdle) return;
    const idle = this.onIdle;
    this.onIdle = undefined;
    // Replies still corked go first (the caller's end() waits for them).
    this.writer.flush();
    idle();
  }
}
