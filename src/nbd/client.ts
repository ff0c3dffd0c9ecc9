/**
 * The remote end of the stack: an NBD client that is a BlockDevice. It opens `connections`
 * NBD connections over one Transport (each its own SSH channel when the transport is ssh)
 * if the remote advertises CAN_MULTI_CONN, splits requests over the remote's maximum
 * payload, pipelines them with cookies and spreads them over the connections. A dropped link
 * or restarted server is hidden: new requests wait, the client reconnects with backoff,
 * checks the export size, replays every write acknowledged since the last successful flush
 * (ReplayLog) and then re-sends the requests that were in flight. Spec: docs/formats.md (NBD),
 * docs/ARCHITECTURE.md (Durability and replay).
 */
import type { BlockCaps, BlockDevice } from '../block/block-device.js';
import { checkRange, checkWritable } from '../block/block-device.js';
import { NbdcryptError, isNbdcryptError } from '../errors.js';
import { log } from '../log.js';
import type { Transport } from '../transport/transport.js';
import type { NbdConnection, WireRequest } from './client-connection.js';
import type { ExportInfo } from './client-handshake.js';
import { openConnection } from './client-open.js';
import { recover } from './client-recovery.js';
import { CF, Cmd, Err, TF } from './protocol.js';
import { ReplayLog } from './replay-log.js';
import { defaultRequestIo, type RequestIo } from './request-io.js';

export interface NbdClientOptions {
  /** NBD connections to open when the remote allows CAN_MULTI_CONN (default 1). */
  connections?: number;
  /** Seconds a request may wait (including reconnects) before failing; 0 = forever. */
  ioTimeout?: number;
  /** Bytes of acknowledged-but-unflushed writes kept for replay (default 256 MiB). */
  replayLimit?: number;
  /** Open read-only even if the remote allows writes. */
  readOnly?: boolean;
  /** Name used in logs and errors (no secrets), e.g. the target URI. */
  name?: string;
  /** Request buffers and where socket reads are reported (default: fresh buffers, nothing reported). */
  io?: RequestIo;
}

export const DEFAULT_REPLAY_LIMIT = 256 * 1024 * 1024;
/** Per-connection bytes in flight before further requests queue (keeps memory bounded). */
const MAX_LOAD_PER_CONN = 64 * 1024 * 1024;
/** Flushes of the replay log in flight at once (see roomInReplayLog). */
const LOG_FLUSHES = 3;
const MAX_REQS_PER_CONN = 128;
/** How long close() waits for replies to requests already sent. */
const CLOSE_DRAIN_MS = 10_000;

interface Op extends WireRequest {
  deadline: number;
  settled: boolean;
  /** Whether the acknowledgement goes into the replay log. */
  logged: boolean;
  /**
   * Who owns `data`: 'caller' (borrowed: copied if kept after the reply), 'given' (ours to
   * keep, but other ops share its memory, so never released), 'ours' (released when done).
   */
  dataOwner: DataOwner;
  /** The connection it was last sent on. */
  conn?: NbdConnection;
  resolve(payload: Buffer | undefined): void;
  reject(e: Error): void;
}

export type LinkState = 'up' | 'recovering' | 'failed' | 'closed';
type DataOwner = 'caller' | 'given' | 'ours';

const errnoNames: Record<number, string> = { 1: 'EPERM', 5: 'EIO', 12: 'ENOMEM', 22: 'EINVAL', 28: 'ENOSPC', 75: 'EOVERFLOW', 95: 'ENOTSUP', 108: 'ESHUTDOWN' };

export class NbdClient implements BlockDevice {
  readonly size: number;
  readonly caps: BlockCaps;
  private readonly flags: number;
  private readonly minBlock: number;
  private readonly maxChunk: number;
  private readonly slots: (NbdConnection | undefined)[];
  private readonly queue: Op[] = [];
  private readonly replay: ReplayLog;
  private readonly io: RequestIo;
  private state: LinkState = 'up';
  private failure: Error | undefined;
  /** Flushes started to trim the replay log, oldest first. */
  private readonly logFlushes: Promise<void>[] = [];
  /** Payload bytes logged since the last of those started. */
  private loggedSinceFlush = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly ioTimeoutMs: number;
  private readonly replayLimit: number;
  private readonly name: string;
  private recovery: Promise<void> | undefined;
  /** Requests submitted and not yet settled. */
  private outstanding = 0;
  private readonly idleWaiters: (() => void)[] = [];
  private reconnectCount = 0;

  private constructor(
    private readonly transport: Transport,
    private readonly exportName: string,
    info: ExportInfo,
    conns: NbdConnection[],
    opts: NbdClientOptions,
  ) {
    this.size = info.size;
    this.flags = info.flags;
    this.minBlock = info.blockSize.minimum;
    this.maxChunk = Math.max(this.minBlock, info.blockSize.maximum - (info.blockSize.maximum % this.minBlock));
    this.caps = {
      flush: (info.flags & TF.SEND_FLUSH) !== 0,
      fua: (info.flags & TF.SEND_FUA) !== 0,
      trim: (info.flags & TF.SEND_TRIM) !== 0,
      zeroes: (info.flags & TF.SEND_WRITE_ZEROES) !== 0,
      multiConn: (info.flags & TF.CAN_MULTI_CONN) !== 0,
      readOnly: (info.flags & TF.READ_ONLY) !== 0 || opts.readOnly === true,
    };
    this.ioTimeoutMs = Math.max(0, (opts.ioTimeout ?? 0) * 1000);
    this.replayLimit = opts.replayLimit ?? DEFAULT_REPLAY_LIMIT;
    this.name = opts.name ?? transport.description;
    this.io = opts.io ?? defaultRequestIo;
    this.replay = new ReplayLog(this.io.buffers);
    this.slots = conns;
    conns.forEach((c, i) => this.install(c, i));
    if (this.ioTimeoutMs > 0) {
      this.sweepTimer = setInterval(() => this.sweep(), Math.min(1000, Math.max(50, this.ioTimeoutMs / 4)));
      this.sweepTimer.unref();
    }
  }

  /** Connects, handshakes and returns a ready client; rejects with ECONNECT/EAUTH/EHOSTKEY/ENOEXPORT/EPROTO. */
  static async connect(transport: Transport, exportName: string, opts: NbdClientOptions = {}): Promise<NbdClient> {
    const name = opts.name ?? transport.description;
    const first = await openConnection(transport, exportName, name, opts.io);
    const conns = [first.conn];
    let want = Math.max(1, Math.floor(opts.connections ?? 1));
    if (want > 1 && !(first.info.flags & TF.CAN_MULTI_CONN)) {
      log.info(`${name}: the remote does not advertise CAN_MULTI_CONN; using one connection instead of ${want}`);
      want = 1;
    }
    try {
      const rest = await Promise.all(Array.from({ length: want - 1 }, () => openConnection(transport, exportName, name, opts.io)));
      for (const r of rest) {
        if (r.info.size !== first.info.size) throw new NbdcryptError('EPROTO', `${name}: connections disagree on the export size`);
        conns.push(r.conn);
      }
    } catch (e) {
      conns.forEach((c) => c.destroy());
      await transport.close();
      throw e;
    }
    // The constructor installs each connection's close handler (a drop before that is caught there).
    return new NbdClient(transport, exportName, first.info, conns, opts);
  }

  /** 'up', 'recovering' (link down, requests held), 'failed' (gave up) or 'closed'. */
  get linkState(): LinkState {
    return this.state;
  }

  get connectionCount(): number {
    return this.slots.length;
  }

  /** Writes acknowledged but not yet covered by a flush (for tests and stats). */
  get replayBytes(): number {
    return this.replay.bytes;
  }

  /** Successful reconnects since connect (for `nbdcrypt serve` stats). */
  get reconnects(): number {
    return this.reconnectCount;
  }

  /** Requests waiting for a connection slot (queued, not yet sent). */
  get queued(): number {
    return this.queue.length;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this.size, offset, length, 'read');
    this.checkOpen();
    if (length === 0) return Buffer.alloc(0);
    const a = this.align(offset, length);
    if (a.offset !== offset || a.length !== length) {
      const whole = await this.readAligned(a.offset, a.length);
      return whole.subarray(offset - a.offset, offset - a.offset + length);
    }
    return this.readAligned(offset, length);
  }

  async write(offset: number, data: Buffer, fua = false, owned = false): Promise<void> {
    checkRange(this.size, offset, data.length, 'write');
    checkWritable(this, 'write');
    this.checkOpen();
    if (data.length === 0) return;
    const a = this.align(offset, data.length);
    if (a.offset !== offset || a.length !== data.length) {
      // Read-modify-write for a remote whose minimum block size we would otherwise break.
      const whole = await this.readAligned(a.offset, a.length);
      data.copy(whole, offset - a.offset);
      if (owned) this.io.buffers.release(data);
      return this.write(a.offset, whole, fua, true);
    }
    await this.roomInReplayLog();
    const useFua = fua && this.caps.fua;
    await this.splitAndRun(Cmd.WRITE, offset, data.length, useFua ? CF.FUA : 0, data, owned);
    if (fua && !useFua && this.caps.flush) await this.flush();
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (!this.caps.flush) return;
    const coveredSeq = this.replay.lastSeq;
    // We use several connections only with CAN_MULTI_CONN, under which one flush covers the
    // writes replied on every connection (docs/formats.md, NBD flags): one fdatasync on the
    // remote, not one per connection, which over a WAN costs write throughput
    // (docs/performance.md, Replay log).
    await this.submit({ type: Cmd.FLUSH, flags: 0, offset: 0, length: 0 });
    this.replay.dropThrough(coveredSeq);
  }

  async trim(offset: number, length: number): Promise<void> {
    checkRange(this.size, offset, length, 'trim');
    checkWritable(this, 'trim');
    this.checkOpen();
    if (!this.caps.trim || length === 0) return;
    await this.roomInReplayLog();
    await this.splitAndRun(Cmd.TRIM, offset, length, 0);
  }

  async writeZeroes(offset: number, length: number, fua = false): Promise<void> {
    checkRange(this.size, offset, length, 'writeZeroes');
    checkWritable(this, 'writeZeroes');
    this.checkOpen();
    if (length === 0) return;
    if (!this.caps.zeroes) {
      for (let at = 0; at < length; at += this.maxChunk) {
        await this.write(offset + at, Buffer.alloc(Math.min(this.maxChunk, length - at)), fua);
      }
      return;
    }
    await this.roomInReplayLog();
    const useFua = fua && this.caps.fua;
    await this.splitAndRun(Cmd.WRITE_ZEROES, offset, length, useFua ? CF.FUA : 0);
    if (fua && !useFua && this.caps.flush) await this.flush();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state === 'up' && this.caps.flush && this.replay.size > 0 && !this.caps.readOnly) {
      await this.flush().catch((e: Error) => log.warn(`${this.name}: final flush failed: ${e.message}`));
    }
    // Let requests already sent get their replies (bounded), so callers are not left hanging.
    if (this.state === 'up' && this.outstanding > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_DRAIN_MS);
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const previous = this.state;
    this.state = 'closed';
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    const err = new NbdcryptError('ECLOSED', `${this.name}: the device was closed`);
    for (const op of this.queue.splice(0)) this.settle(op, err);
    for (const c of this.slots) {
      if (!c) continue;
      if (previous === 'up') c.disconnect();
      else c.destroy(err);
    }
    this.slots.fill(undefined);
    await this.transport.close();
  }

  // ---- request plumbing ----

  private checkOpen(): void {
    if (this.state === 'closed') throw new NbdcryptError('ECLOSED', `${this.name}: the device was closed`);
    if (this.state === 'failed') throw this.failure!;
  }

  private align(offset: number, length: number): { offset: number; length: number } {
    const m = this.minBlock;
    if (m <= 1) return { offset, length };
    const start = offset - (offset % m);
    const end = Math.min(this.size, Math.ceil((offset + length) / m) * m);
    return { offset: start, length: end - start };
  }

  private async readAligned(offset: number, length: number): Promise<Buffer> {
    if (length <= this.maxChunk) return (await this.submit({ type: Cmd.READ, flags: 0, offset, length }))!;
    const dest = this.io.buffers.acquire(length);
    const parts: Promise<Buffer | undefined>[] = [];
    for (let at = 0; at < length; at += this.maxChunk) {
      parts.push(this.submit({ type: Cmd.READ, flags: 0, offset: offset + at, length: Math.min(this.maxChunk, length - at), dest, destOffset: at }));
    }
    await Promise.all(parts);
    return dest;
  }

  private async splitAndRun(type: number, offset: number, length: number, flags: number, data?: Buffer, owned = false): Promise<void> {
    const parts: Promise<Buffer | undefined>[] = [];
    const dataOwner: DataOwner = !owned ? 'caller' : length <= this.maxChunk ? 'ours' : 'given';
    const logged = this.caps.flush && !(flags & CF.FUA);
    for (let at = 0; at < length; at += this.maxChunk) {
      const n = Math.min(this.maxChunk, length - at);
      parts.push(this.submit({ type, flags, offset: offset + at, length: n, data: data && (n === data.length ? data : data.subarray(at, at + n)), logged, dataOwner }));
    }
    await Promise.all(parts);
  }

  /**
   * Keeps the replay log bounded without stalling the writer. A flush costs a round trip plus
   * the remote's fdatasync, and with one flush at a time the log must hold about two of those
   * periods of writes, which caps writes at limit / (2 · flush time), low on a WAN
   * (docs/performance.md, Replay log). So flushes are pipelined: a new one starts whenever a
   * quarter of the limit was logged since the last one started (up to LOG_FLUSHES at once), and
   * only a full log makes new writes wait, for the oldest flush in flight.
   */
  private async roomInReplayLog(): Promise<void> {
    if (!this.caps.flush) return;
    if (this.loggedSinceFlush >= this.replayLimit / 4 && this.logFlushes.length < LOG_FLUSHES) this.startLogFlush();
    while (this.replay.bytes >= this.replayLimit) {
      log.debug(`${this.name}: replay log holds ${this.replay.bytes} bytes; writes wait for a flush`);
      await (this.logFlushes[0] ?? this.startLogFlush());
    }
  }

  /** Starts a flush that trims the replay log. */
  private startLogFlush(): Promise<void> {
    this.loggedSinceFlush = 0;
    const p: Promise<void> = this.flush().finally(() => this.logFlushes.splice(this.logFlushes.indexOf(p), 1));
    p.catch(() => undefined); // nobody may wait on a background flush; recovery reports failures
    this.logFlushes.push(p);
    return p;
  }

  private submit(r: { type: number; flags: number; offset: number; length: number; data?: Buffer; dest?: Buffer; destOffset?: number; logged?: boolean; dataOwner?: DataOwner }): Promise<Buffer | undefined> {
    this.checkOpen();
    return new Promise((resolve, reject) => {
      // Every field spelled out (no spread, same order): one object shape for all ops keeps
      // this hot path monomorphic (a spread shows up in the CPU profile of small random I/O).
      const op: Op = {
        type: r.type,
        flags: r.flags,
        offset: r.offset,
        length: r.length,
        data: r.data,
        dest: r.dest,
        destOffset: r.destOffset,
        conn: undefined,
        logged: r.logged ?? false,
        dataOwner: r.dataOwner ?? 'caller',
        deadline: this.ioTimeoutMs ? Date.now() + this.ioTimeoutMs : 0,
        settled: false,
        resolve,
        reject,
        onReply: (error, payload) => this.onReply(op, error, payload),
      };
      this.outstanding++;
      this.queue.push(op);
      this.dispatch();
    });
  }

  private onReply(op: Op, error: number, payload: Buffer | undefined): void {
    if (op.settled) return;
    if (error === Err.ESHUTDOWN) {
      // The server is going away (spec: soft-disconnect): keep the request, drop this
      // connection, and let the reconnect re-send it.
      this.queue.unshift(op);
      op.conn?.destroy(new NbdcryptError('EIO', 'the NBD server is shutting down (ESHUTDOWN)'));
      return;
    }
    if (error !== 0) {
      const what = ['read', 'write', 'disc', 'flush', 'trim', 'cache', 'write-zeroes'][op.type] ?? `command ${op.type}`;
      this.settle(op, new NbdcryptError('EIO', `${this.name}: remote ${what} at offset ${op.offset} length ${op.length} failed with ${errnoNames[error] ?? `error ${error}`}`));
    } else {
      if (op.logged) this.logAcknowledged(op);
      else if (op.dataOwner === 'ours') this.io.buffers.release(op.data);
      op.settled = true;
      this.done();
      op.resolve(payload);
    }
    this.dispatch();
  }

  /** Keeps an acknowledged write for replay; a borrowed payload is copied (its owner reuses it). */
  private logAcknowledged(op: Op): void {
    const d = op.data;
    const data = d && op.dataOwner === 'caller' ? this.io.buffers.copyOf(d) : d;
    const release = d !== undefined && op.dataOwner !== 'given';
    this.replay.add({ type: op.type, flags: op.flags, offset: op.offset, length: op.length, data, release });
    this.loggedSinceFlush += op.data?.length ?? 0;
  }

  private settle(op: Op, err: Error): void {
    if (op.settled) return;
    op.settled = true;
    this.done();
    op.reject(err);
  }

  /** One request fewer outstanding; wakes close() when none is left. */
  private done(): void {
    if (--this.outstanding === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private dispatch(): void {
    while (this.state === 'up' && this.queue.length > 0) {
      const op = this.queue[0]!;
      if (op.settled) {
        this.queue.shift();
        continue;
      }
      const conn = this.leastLoaded();
      if (!conn || conn.isClosed) return;
      if (conn.pending >= MAX_REQS_PER_CONN || (conn.load >= MAX_LOAD_PER_CONN && conn.pending > 0)) return;
      this.queue.shift();
      op.conn = conn;
      conn.send(op);
    }
  }

  private leastLoaded(): NbdConnection | undefined {
    let best: NbdConnection | undefined;
    for (const c of this.slots) {
      if (c && !c.isClosed && (!best || c.load < best.load || (c.load === best.load && c.pending < best.pending))) best = c;
    }
    return best;
  }

  private install(conn: NbdConnection, slot: number): void {
    this.slots[slot] = conn;
    conn.onCloseHandler = (err, unanswered) => this.onConnectionClosed(conn, err, unanswered as Op[]);
    // It may have dropped between its handshake and now.
    if (conn.isClosed) queueMicrotask(() => this.onConnectionClosed(conn, new NbdcryptError('EIO', 'the NBD connection closed right after the handshake'), []));
  }

  private sweep(): void {
    const now = Date.now();
    const expired = (op: Op): boolean => !op.settled && op.deadline > 0 && now > op.deadline;
    const timeout = (op: Op): NbdcryptError =>
      new NbdcryptError('ETIMEDOUT', `${this.name}: request at offset ${op.offset} waited more than the I/O timeout of ${this.ioTimeoutMs / 1000} s (${this.state === 'up' ? 'no reply' : 'link down'}); failing it with EIO`);
    for (const op of this.queue) if (expired(op)) this.settle(op, timeout(op));
    for (const c of this.slots) for (const op of (c?.requests() ?? []) as Op[]) if (expired(op)) this.settle(op, timeout(op));
  }

  // ---- drop and recovery ----

  private onConnectionClosed(conn: NbdConnection, err: Error, unanswered: Op[]): void {
    if (this.state === 'closed' || this.state === 'failed') {
      const why = this.failure ?? new NbdcryptError('ECLOSED', `${this.name}: the device was closed before the remote replied`);
      for (const op of unanswered) this.settle(op, why);
      return;
    }
    // Requests that got no reply go back to the front of the queue, oldest first.
    this.queue.unshift(...unanswered.filter((op) => !op.settled));
    if (this.state !== 'up') return;
    if (isNbdcryptError(err, 'EPROTO')) log.warn(`${this.name}: ${err.message}`);
    this.state = 'recovering';
    for (const c of this.slots) if (c && c !== conn) c.destroy(err);
    this.slots.fill(undefined);
    log.warn(`${this.name}: link dropped (${err.message}); holding ${this.queue.length} requests and ${this.replay.size} unflushed writes (${this.replay.bytes} bytes), reconnecting`);
    this.recovery = this.recover().finally(() => (this.recovery = undefined));
  }

  private recover(): Promise<void> {
    return recover({
      name: this.name,
      transport: this.transport,
      exportName: this.exportName,
      size: this.size,
      flags: this.flags,
      connections: this.slots.length,
      io: this.io,
      stillRecovering: () => this.state === 'recovering',
      replayEntries: () => this.replay.list(),
      recovered: (conns, r) => {
        conns.forEach((c, i) => this.install(c, i));
        this.state = 'up';
        this.reconnectCount++;
        log.info(`${this.name}: reconnected after ${r.seconds.toFixed(1)} s (attempt ${r.attempt}); replayed ${r.replayed} unflushed writes, re-sending ${this.queue.length} requests`);
        this.dispatch();
      },
      failed: (err) => this.fail(err),
    });
  }

  private fail(err: Error): void {
    log.error(`${this.name}: giving up: ${err.message}`);
    this.state = 'failed';
    this.failure = err;
    for (const op of this.queue.splice(0)) this.settle(op, err);
    void this.transport.close();
  }
}
