/**
 * The NBD client protocol as a session: the connections opened over one transport (each
 * its own SSH channel when the transport is ssh), requests split to the remote's maximum
 * payload and aligned to its minimum block (client-requests.ts, client-alignment.ts),
 * spread over the connections with bounded load each, and replies matched by cookie
 * (client-connection.ts). Any connection that breaks, breaks the session: its owner opens a
 * new one. It knows nothing of reconnecting; a layer above turns sessions into a device
 * that survives drops. A connection that makes no progress for `stallTimeoutMs` while
 * requests wait (a remote that stops mid-reply) is treated as dropped.
 */
import { defaultRequestIo, type RequestIo } from '../block/request-io.js';
import type { RequestBuffers } from '../block/buffer-pool.js';
import type { BlockCaps } from '../block/block-device.js';
import { NbdcryptError } from '../errors.js';
import { SessionDeath } from '../session-death.js';
import type { NbdClientConnection, WireRequest } from './client-connection.js';
import { alignRange, readModifyWrite, readWidened } from './client-alignment.js';
import type { NegotiatedExport } from './client-handshake-step.js';
import { sendParts, type Answer, type WireSink } from './client-requests.js';
import { CF, Cmd, Err, TF } from './protocol.js';

/** One request as the session gets it (the shape the resilient layer hands over). */
export interface NbdSessionRequest {
  readonly kind: 'read' | 'write' | 'flush' | 'trim' | 'zeroes';
  readonly offset: number;
  readonly length: number;
  readonly data: Buffer | undefined;
  readonly fua: boolean;
  done(err: Error | undefined, payload: Buffer | undefined): void;
}

export interface NbdSessionOptions {
  /** Secret-free name for errors (the target URI). */
  name: string;
  /** Milliseconds without progress before a busy connection counts as dropped; 0 = never. */
  stallTimeoutMs: number;
  /** Request buffers and transient-bytes reporting of the command's runtime (default: none). */
  io?: RequestIo;
}

/** Per-connection bytes in flight before further requests queue (keeps memory bounded). */
const MAX_LOAD_PER_CONN = 64 * 1024 * 1024;
const MAX_REQS_PER_CONN = 128;
const errnoNames: Record<number, string> = { 1: 'EPERM', 5: 'EIO', 12: 'ENOMEM', 22: 'EINVAL', 28: 'ENOSPC', 75: 'EOVERFLOW', 95: 'ENOTSUP', 108: 'ESHUTDOWN' };
const cmdNames = ['read', 'write', 'disc', 'flush', 'trim', 'cache', 'write-zeroes'];

export class NbdClientSession implements WireSink {
  readonly facts: { size: number; caps: BlockCaps };
  readonly maxChunk: number;
  readonly buffers: RequestBuffers;
  private readonly minBlock: number;
  /** Wire requests waiting for a connection slot. */
  private readonly waiting: WireRequest[] = [];
  private readonly death = new SessionDeath();
  private readonly stallTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly conns: NbdClientConnection[],
    info: NegotiatedExport,
    private readonly opts: NbdSessionOptions,
  ) {
    this.buffers = (opts.io ?? defaultRequestIo).buffers;
    const f = info.flags;
    this.facts = {
      size: info.size,
      caps: {
        flush: (f & TF.SEND_FLUSH) !== 0,
        fua: (f & TF.SEND_FUA) !== 0,
        trim: (f & TF.SEND_TRIM) !== 0,
        zeroes: (f & TF.SEND_WRITE_ZEROES) !== 0,
        multiConn: (f & TF.CAN_MULTI_CONN) !== 0,
        readOnly: (f & TF.READ_ONLY) !== 0,
      },
    };
    this.minBlock = info.blockSize.minimum;
    this.maxChunk = Math.max(this.minBlock, info.blockSize.maximum - (info.blockSize.maximum % this.minBlock));
    for (const c of conns) {
      c.onCloseHandler = (err) => this.die(err);
      c.onReplyHandler = () => this.dispatch();
      // It may have dropped between its handshake and now.
      if (c.isClosed) queueMicrotask(() => this.die(new NbdcryptError('EIO', 'the NBD connection closed right after the handshake')));
    }
    if (opts.stallTimeoutMs > 0) {
      this.stallTimer = setInterval(() => this.checkStalls(), Math.min(1000, Math.max(50, opts.stallTimeoutMs / 4)));
      this.stallTimer.unref();
    }
  }

  get channels(): number {
    return this.conns.length;
  }

  get queued(): number {
    return this.waiting.length;
  }

  submit(req: NbdSessionRequest): void {
    if (this.death.failure) return;
    const answer: Answer = this.death.whileAlive((err, payload) => req.done(err, payload));
    const fua = req.fua ? CF.FUA : 0;
    switch (req.kind) {
      case 'read': {
        const a = alignRange(this.minBlock, this.facts.size, req.offset, req.length);
        if (a.offset === req.offset && a.length === req.length) return sendParts(this, Cmd.READ, 0, req.offset, req.length, undefined, answer);
        return void readWidened(this, a, req.offset, req.length).then((b) => answer(undefined, b), (e: Error) => answer(e, undefined));
      }
      case 'write': {
        const a = alignRange(this.minBlock, this.facts.size, req.offset, req.length);
        if (a.offset === req.offset && a.length === req.length) return sendParts(this, Cmd.WRITE, fua, req.offset, req.length, req.data, answer);
        return void readModifyWrite(this, a, req.offset, req.data!, req.fua).then(() => answer(undefined, undefined), (e: Error) => answer(e, undefined));
      }
      case 'flush':
        // Several connections only with CAN_MULTI_CONN, under which one flush covers the
        // writes replied on every connection (docs/formats.md, NBD flags): one fdatasync on
        // the remote, not one per connection, which over a WAN costs write throughput.
        return sendParts(this, Cmd.FLUSH, 0, 0, 0, undefined, answer);
      case 'trim':
        return sendParts(this, Cmd.TRIM, 0, req.offset, req.length, undefined, answer);
      case 'zeroes':
        return sendParts(this, Cmd.WRITE_ZEROES, fua, req.offset, req.length, undefined, answer);
    }
  }

  whenDead(listener: (err: Error) => void): void {
    this.death.whenDead(listener);
  }

  /** Sends NBD_CMD_DISC on every connection (the server finishes what it got) and ends them. */
  close(): void {
    if (this.death.failure) return;
    for (const c of this.conns) c.disconnect();
    this.die(new NbdcryptError('ECLOSED', `${this.opts.name}: the NBD session was closed`), false);
  }

  destroy(err?: Error): void {
    this.die(err ?? new NbdcryptError('ECLOSED', `${this.opts.name}: the NBD session was closed`));
  }

  // ---- WireSink ----

  send(w: WireRequest): void {
    this.waiting.push(w);
    this.dispatch();
  }

  replyError(w: WireRequest, error: number): Error | undefined {
    if (error === Err.ESHUTDOWN) {
      // The server is going away (spec: soft-disconnect): the session ends unanswered and
      // its owner re-sends the request on the next one.
      this.die(new NbdcryptError('EIO', 'the NBD server is shutting down (ESHUTDOWN)'));
      return undefined;
    }
    const what = cmdNames[w.type] ?? `command ${w.type}`;
    return new NbdcryptError('EIO', `${this.opts.name}: remote ${what} at offset ${w.offset} length ${w.length} failed with ${errnoNames[error] ?? `error ${error}`}`);
  }

  // ---- internals ----

  private dispatch(): void {
    let head = 0;
    while (!this.death.failure && head < this.waiting.length) {
      const conn = this.leastLoaded();
      if (!conn || conn.pending >= MAX_REQS_PER_CONN || (conn.load >= MAX_LOAD_PER_CONN && conn.pending > 0)) break;
      conn.send(this.waiting[head++]!);
    }
    if (head > 0) this.waiting.splice(0, head);
  }

  private leastLoaded(): NbdClientConnection | undefined {
    let best: NbdClientConnection | undefined;
    for (const c of this.conns) {
      if (!c.isClosed && (!best || c.load < best.load || (c.load === best.load && c.pending < best.pending))) best = c;
    }
    return best;
  }

  private checkStalls(): void {
    const now = Date.now();
    for (const c of this.conns) {
      if (c.stalledFor(now) <= this.opts.stallTimeoutMs) continue;
      c.destroy(new NbdcryptError('EIO', `the NBD server sent nothing for ${this.opts.stallTimeoutMs / 1000} s while ${c.pending || 1} requests waited for their replies (stall timeout)`));
      return;
    }
  }

  private die(err: Error, destroyConnections = true): void {
    this.death.announce(err, () => {
      if (this.stallTimer) clearInterval(this.stallTimer);
      this.waiting.length = 0;
      if (destroyConnections) for (const c of this.conns) c.destroy(err);
    });
  }
}
