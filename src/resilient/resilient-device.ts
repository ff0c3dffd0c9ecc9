/**
 * Turns a remote session that can be reopened into a BlockDevice that never fails a request
 * because the link dropped. Requests go to the current session; when it dies, the ones it
 * did not answer are held, a new session is opened with backoff (reopen.ts), the writes
 * acknowledged since the last completed flush are replayed (replay-log.ts) and the held
 * requests re-sent. Durability rule: a write resolves only after the remote acknowledged
 * it, so what the layer above considers written survives a crash of this process; what
 * the remote acknowledged but did not flush survives a restart of the remote.
 * --io-timeout bounds how long any request may wait, whatever state its reply is in;
 * close() is bounded too (CLOSE_DEADLINE_MS), even when the remote stalls.
 */
import type { BlockCaps, BlockDevice } from '../block/block-device.js';
import { checkRange, checkWritable, DEFAULT_BLOCK_SIZES } from '../block/block-device.js';
import { unpooled, type RequestBuffers } from '../block/buffer-pool.js';
import { writeZeroChunks } from '../block/write-zeroes.js';
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';
import { beforeDeadline } from './deadline.js';
import { LinkHealth } from './link-health.js';
import { PendingRequest, type RequestOwner } from './pending-request.js';
import { reopen } from './reopen.js';
import { ReplayBudget } from './replay-budget.js';
import { ReplayLog } from './replay-log.js';
import { RequestBook } from './request-book.js';
import type { RemoteSession, RequestKind, SessionFacts, SessionOpener } from './session.js';

export interface ResilientOptions {
  /** Seconds a request may wait (reconnects included) before failing; 0 = forever. */
  ioTimeout?: number;
  /** Bytes of acknowledged-but-unflushed writes kept for replay (default 256 MiB). */
  replayLimit?: number;
  /** Refuse writes even if the remote allows them. */
  readOnly?: boolean;
  /** Where written data is copied to for the replay log and given back to (default: fresh buffers). */
  buffers?: RequestBuffers;
}

export const DEFAULT_REPLAY_LIMIT = 256 * 1024 * 1024;
/** How long close() waits for the final flush and the replies to requests in flight. */
export const CLOSE_DEADLINE_MS = 10_000;

export type LinkState = 'up' | 'recovering' | 'failed' | 'closed';

export class ResilientDevice implements BlockDevice, RequestOwner {
  readonly size: number;
  readonly caps: BlockCaps;
  /** Any request works: the session splits it to the remote's maximum and aligns it to its minimum. */
  readonly blockSize = DEFAULT_BLOCK_SIZES;
  private session: RemoteSession | undefined;
  private readonly first: { facts: SessionFacts; channels: number };
  private readonly book = new RequestBook();
  private readonly replay: ReplayLog;
  private readonly buffers: RequestBuffers;
  private readonly budget: ReplayBudget;
  private readonly health: LinkHealth;
  private readonly stop = new AbortController();
  private state: LinkState = 'up';
  private failure: Error | undefined;
  /** Why the last session died (for timeout messages). */
  private lastCause: Error | undefined;
  private readonly ioTimeoutMs: number;
  private readonly sweepTimer: NodeJS.Timeout | undefined;
  private reconnectCount = 0;
  private closing: Promise<void> | undefined;
  private readonly name: string;

  private constructor(
    private readonly opener: SessionOpener,
    session: RemoteSession,
    opts: ResilientOptions,
  ) {
    this.name = opener.name;
    this.buffers = opts.buffers ?? unpooled;
    this.replay = new ReplayLog(this.buffers);
    const facts = session.facts;
    this.size = facts.size;
    this.caps = { ...facts.caps, readOnly: facts.caps.readOnly || opts.readOnly === true };
    this.first = { facts, channels: session.channels };
    this.health = new LinkHealth(this.name);
    this.budget = new ReplayBudget(opts.replayLimit ?? DEFAULT_REPLAY_LIMIT, this.replay, () => this.flush(), this.name);
    this.ioTimeoutMs = Math.max(0, (opts.ioTimeout ?? 0) * 1000);
    if (this.ioTimeoutMs > 0) {
      this.sweepTimer = setInterval(() => this.sweep(), Math.min(1000, Math.max(50, this.ioTimeoutMs / 4)));
      this.sweepTimer.unref();
    }
    this.install(session);
  }

  /** Opens the first session; its errors (ECONNECT, EAUTH, EHOSTKEY, ENOEXPORT, EPROTO) are final. */
  static async open(opener: SessionOpener, opts: ResilientOptions = {}): Promise<ResilientDevice> {
    let session: RemoteSession;
    try {
      session = await opener.open();
    } catch (e) {
      await opener.close();
      throw e;
    }
    return new ResilientDevice(opener, session, opts);
  }

  /** 'up', 'recovering' (link down, requests held), 'failed' (gave up) or 'closed'. */
  get linkState(): LinkState {
    return this.state;
  }

  /** Connections or channels of the current (or last) session. */
  get connectionCount(): number {
    return this.session?.channels ?? this.first.channels;
  }

  /** Writes acknowledged but not yet covered by a flush (for tests and stats). */
  get replayBytes(): number {
    return this.replay.bytes;
  }

  /** Successful reopens since open (for `nbdcrypt serve` stats). */
  get reconnects(): number {
    return this.reconnectCount;
  }

  /** Requests waiting for the link or for a free channel. */
  get queued(): number {
    return this.book.held + (this.session?.queued ?? 0);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this.size, offset, length, 'read');
    this.checkOpen();
    if (length === 0) return Buffer.alloc(0);
    return (await this.submit('read', offset, length, undefined, false, false, false))!;
  }

  async write(offset: number, data: Buffer, fua = false, owned = false): Promise<void> {
    checkRange(this.size, offset, data.length, 'write');
    checkWritable(this, 'write');
    this.checkOpen();
    if (data.length === 0) return;
    if (this.caps.flush) await this.budget.room();
    const useFua = fua && this.caps.fua;
    await this.submit('write', offset, data.length, data, useFua, owned, this.caps.flush && !useFua);
    if (fua && !useFua && this.caps.flush) await this.flush();
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (!this.caps.flush) return;
    // Entries acknowledged before the flush was issued are durable once it completes, on
    // whichever session it ends up on: a reopened session replays them before anything else.
    const covered = this.replay.lastSeq;
    await this.submit('flush', 0, 0, undefined, false, false, false);
    this.replay.dropThrough(covered);
  }

  async trim(offset: number, length: number): Promise<void> {
    checkRange(this.size, offset, length, 'trim');
    checkWritable(this, 'trim');
    this.checkOpen();
    if (!this.caps.trim || length === 0) return;
    if (this.caps.flush) await this.budget.room();
    await this.submit('trim', offset, length, undefined, false, false, this.caps.flush);
  }

  async writeZeroes(offset: number, length: number, fua = false): Promise<void> {
    checkRange(this.size, offset, length, 'writeZeroes');
    checkWritable(this, 'writeZeroes');
    this.checkOpen();
    if (length === 0) return;
    if (!this.caps.zeroes) {
      await writeZeroChunks((at, zeroes) => this.write(at, zeroes, fua), offset, length);
      return;
    }
    if (this.caps.flush) await this.budget.room();
    const useFua = fua && this.caps.fua;
    await this.submit('zeroes', offset, length, undefined, useFua, false, this.caps.flush && !useFua);
    if (fua && !useFua && this.caps.flush) await this.flush();
  }

  /** Flushes (bounded by CLOSE_DEADLINE_MS with what is in flight), then fails whatever is left with ECLOSED. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    if (this.state === 'closed') return;
    const deadline = Date.now() + CLOSE_DEADLINE_MS;
    const live = this.state === 'up' || this.state === 'recovering';
    if (live && this.caps.flush && this.replay.size > 0 && !this.caps.readOnly) {
      const outcome = await beforeDeadline(this.flush(), deadline);
      if (outcome instanceof Error) log.warn(`${this.name}: final flush failed: ${outcome.message}`);
      else if (outcome === 'late') {
        log.warn(`${this.name}: the final flush did not complete within ${CLOSE_DEADLINE_MS / 1000} s; closing anyway (${this.replay.size} acknowledged writes, ${this.replay.bytes} bytes, may not be durable on the remote)`);
      }
    }
    // Let requests already sent get their replies (bounded), so callers are not left hanging.
    if (this.state === 'up' && !this.book.idle) await beforeDeadline(this.book.whenIdle(), deadline);
    const wasUp = this.state === 'up' && this.book.idle;
    this.state = 'closed';
    this.stop.abort();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    const err = new NbdcryptError('ECLOSED', `${this.name}: the device was closed before the remote replied`);
    this.book.failAll(err);
    const s = this.session;
    this.session = undefined;
    if (s && wasUp) s.close();
    else s?.destroy(err);
    await this.opener.close();
  }

  // ---- requests ----

  private checkOpen(): void {
    if (this.state === 'closed') throw new NbdcryptError('ECLOSED', `${this.name}: the device was closed`);
    if (this.state === 'failed') throw this.failure!;
  }

  private submit(kind: RequestKind, offset: number, length: number, data: Buffer | undefined, fua: boolean, owned: boolean, logged: boolean): Promise<Buffer | undefined> {
    this.checkOpen();
    return new Promise((resolve, reject) => {
      const deadline = this.ioTimeoutMs ? Date.now() + this.ioTimeoutMs : 0;
      this.book.add(new PendingRequest(this, kind, offset, length, data, fua, owned, logged, deadline, resolve, reject), this.session);
    });
  }

  onDone(req: PendingRequest, err: Error | undefined, payload: Buffer | undefined): void {
    if (req.settled) return; // timed out or closed meanwhile
    if (err) return this.book.fail(req, err);
    this.health.answer();
    if (req.logged) this.logAcknowledged(req);
    else if (req.owned) this.buffers.release(req.data);
    this.book.settle(req);
    req.resolve(payload);
  }

  /** Keeps an acknowledged write for replay; a lent payload is copied (its owner reuses it). */
  private logAcknowledged(req: PendingRequest): void {
    const d = req.data;
    const data = d && !req.owned ? this.buffers.copyOf(d) : d;
    this.replay.add({ kind: req.kind as 'write' | 'zeroes' | 'trim', offset: req.offset, length: req.length, data, release: d !== undefined });
    this.budget.logged(d?.length ?? 0);
  }

  /** Fails every request older than --io-timeout, whether queued, sent or half answered. */
  private sweep(): void {
    const why = this.state === 'up' ? 'no reply' : `link down${this.lastCause ? `: ${this.lastCause.message}` : ''}`;
    this.book.expire(Date.now(), (r) => new NbdcryptError('ETIMEDOUT', `${this.name}: ${r.kind} at offset ${r.offset} waited more than the I/O timeout of ${this.ioTimeoutMs / 1000} s (${why}); failing it with EIO`));
  }

  // ---- sessions ----

  private install(session: RemoteSession): void {
    this.session = session;
    this.health.opened();
    session.whenDead((err) => this.onSessionDead(session, err));
  }

  private onSessionDead(session: RemoteSession, err: Error): void {
    if (session !== this.session) return;
    this.session = undefined;
    this.book.takeBack();
    if (this.state !== 'up') return;
    this.lastCause = err;
    const giveUp = this.health.died(err, this.book.held);
    if (giveUp) return this.fail(giveUp);
    this.state = 'recovering';
    // After a healthy session every drop and reconnect is logged; a remote that fails the
    // same way again and again is logged once a minute.
    const healthy = this.health.afterHealthySession;
    const msg = `${this.name}: link dropped (${err.message}); holding ${this.book.held} requests and ${this.replay.size} unflushed writes (${this.replay.bytes} bytes), reconnecting`;
    if (healthy) log.warn(msg);
    else this.health.problems.emit('warn', err.message, msg);
    void reopen({
      opener: this.opener,
      first: this.first,
      backoff: this.health.backoff,
      signal: this.stop.signal,
      replayEntries: () => this.replay.list(),
      recovered: (s, r) => {
        this.install(s);
        this.state = 'up';
        this.reconnectCount++;
        const line = `${this.name}: reconnected after ${r.seconds.toFixed(1)} s (attempt ${r.attempt}); replayed ${r.replayed} unflushed writes, re-sending ${this.book.held} requests`;
        if (healthy) log.info(line);
        else this.health.problems.emit('info', 'reconnected', line);
        this.book.resend(s, () => this.session);
      },
      attemptFailed: (e, attempt, waitMs) => {
        this.lastCause = e;
        const verdict = this.health.attemptFailed(e);
        if (!verdict) this.health.problems.emit('warn', e.message, `${this.name}: reconnect attempt ${attempt} failed (${e.message}); retrying in ${waitMs} ms`);
        return verdict;
      },
      failed: (e) => this.fail(e),
    });
  }

  private fail(err: Error): void {
    log.error(`${this.name}: giving up: ${err.message}`);
    this.state = 'failed';
    this.failure = err;
    this.stop.abort();
    this.book.failAll(err);
    this.session?.destroy(err);
    this.session = undefined;
    void this.opener.close().catch(() => undefined);
  }
}
