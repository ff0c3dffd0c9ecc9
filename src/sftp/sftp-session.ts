/**
 * The SFTP client protocol as a session over the image file: several SFTP channels of one
 * SSH connection, each with the file open, requests split into pieces no larger than the
 * server accepts (limits@openssh.com) and spread over the channels with many pieces in
 * flight on each. FLUSH is fsync@openssh.com on every channel that wrote since its last
 * fsync; FUA is the write, then an fsync on the channels it went over. A channel that goes
 * away breaks the session; it knows nothing of reconnecting: a layer above turns sessions
 * into a device that survives drops. Protocol: draft-ietf-secsh-filexfer-02 (SFTP v3) and
 * OpenSSH's PROTOCOL extensions, see docs/sftp.md.
 */
import type { BlockCaps } from '../block/block-device.js';
import { unpooled, type RequestBuffers } from '../block/buffer-pool.js';
import { NbdcryptError } from '../errors.js';
import { SessionDeath } from '../session-death.js';
import type { SftpChannel } from './sftp-channel.js';
import { requestError, statusOf } from './sftp-status.js';

/** One request as the session gets it (the shape the resilient layer hands over). */
export interface SftpSessionRequest {
  readonly kind: 'read' | 'write' | 'flush' | 'trim' | 'zeroes';
  readonly offset: number;
  readonly length: number;
  readonly data: Buffer | undefined;
  readonly fua: boolean;
  done(err: Error | undefined, payload: Buffer | undefined): void;
}

export interface SftpSessionOptions {
  /** Secret-free name for errors (the target URI). */
  name: string;
  size: number;
  /** Largest read or write payload per SFTP request. */
  chunk: number;
  /** The server has fsync@openssh.com and the user did not turn remote flushes off. */
  flush: boolean;
  readOnly: boolean;
  /** Where read destinations come from (a READ result belongs to the caller); default fresh buffers. */
  buffers?: RequestBuffers;
}

/** SFTP requests in flight per channel before further pieces queue. */
const MAX_PENDING_PER_CHANNEL = 32;

type Piece = (ch: SftpChannel) => void;

export class SftpSession {
  readonly facts: { size: number; caps: BlockCaps };
  private readonly waiting: Piece[] = [];
  private readonly death = new SessionDeath();

  constructor(
    private readonly chans: SftpChannel[],
    private readonly o: SftpSessionOptions,
  ) {
    // A flush fsyncs every channel that wrote, so it covers writes answered on any of them.
    this.facts = { size: o.size, caps: { flush: o.flush, fua: o.flush, trim: false, zeroes: false, multiConn: true, readOnly: o.readOnly } };
    for (const c of chans) {
      c.onAnswered = () => {
        if (this.waiting.length > 0) this.dispatch();
      };
      const lost = (why: string) => () => this.die(new NbdcryptError('ECONNECT', `${o.name}: SFTP channel ${why}`));
      c.sftp.on('close', lost('closed'));
      c.sftp.on('end', lost('ended'));
      c.sftp.on('error', (e: Error) => lost(`failed (${e.message})`)());
    }
  }

  get channels(): number {
    return this.chans.length;
  }

  /** Largest payload of one SFTP read or write. */
  get pieceSize(): number {
    return this.o.chunk;
  }

  /** Pieces waiting for a channel with room. */
  get queued(): number {
    return this.waiting.length;
  }

  submit(req: SftpSessionRequest): void {
    if (this.death.failure) return;
    const answer = this.death.whileAlive((err: Error | undefined, payload?: Buffer) => req.done(err, payload));
    switch (req.kind) {
      case 'read':
        return this.read(req.offset, req.length, answer);
      case 'write':
        return this.write(req.offset, req.data!, req.fua && this.o.flush, answer);
      case 'flush':
        // Without remote flushes (--no-remote-flush) FLUSH is not offered; one asked anyway has nothing to do.
        return this.fsync(this.o.flush ? this.chans.filter((c) => c.dirty) : [], answer);
      default:
        return answer(new NbdcryptError('ENOTSUP', `${this.o.name}: ${req.kind} is not supported over SFTP`));
    }
  }

  whenDead(listener: (err: Error) => void): void {
    this.death.whenDead(listener);
  }

  /** Closes the file handles and the channels; the server finishes what it was sent. */
  close(): void {
    if (this.death.failure) return;
    this.die(new NbdcryptError('ECLOSED', `${this.o.name}: the SFTP session was closed`), false);
    for (const c of this.chans) c.close();
  }

  destroy(err?: Error): void {
    this.die(err ?? new NbdcryptError('ECLOSED', `${this.o.name}: the SFTP session was closed`));
  }

  // ---- requests ----

  private read(offset: number, length: number, answer: (err: Error | undefined, payload?: Buffer) => void): void {
    // Not released on failure: other pieces may still be in flight into it; the GC takes it.
    const out = (this.o.buffers ?? unpooled).acquire(length);
    const all = new Countdown(0, (err) => answer(err, err ? undefined : out));
    // A short answer (allowed by the protocol) asks again for the rest.
    const piece = (at: number, n: number): void => {
      all.add();
      this.send((ch) =>
        ch.read(offset + at, out, at, n, (err, got) => {
          if (err) return this.settle(all, err, `read at offset ${offset + at} length ${n}`);
          if (got === 0) {
            return all.done(new NbdcryptError('EIO', `${this.o.name}: the remote file ends before offset ${offset + at}; it was truncated while in use`));
          }
          if (got < n) piece(at + got, n - got);
          all.done();
        }),
      );
    };
    this.split(length, piece);
    all.start();
  }

  private write(offset: number, data: Buffer, fua: boolean, answer: (err: Error | undefined) => void): void {
    const used = new Set<SftpChannel>();
    const all = new Countdown(0, (err) => {
      if (err || !fua) return answer(err);
      this.fsync([...used], answer);
    });
    this.split(data.length, (at, n) => {
      all.add();
      this.send((ch) => {
        used.add(ch);
        ch.write(offset + at, data, at, n, (err) => (err ? this.settle(all, err, `write at offset ${offset + at} length ${n}`) : all.done()));
      });
    });
    all.start();
  }

  private fsync(chans: SftpChannel[], answer: (err: Error | undefined) => void): void {
    const all = new Countdown(chans.length, answer);
    for (const c of chans) {
      // Sent on its own channel, behind that channel's writes: never queued elsewhere.
      c.fsync((err) => (err ? this.settle(all, err, 'fsync@openssh.com') : all.done()));
    }
    all.start();
  }

  /** A server answer fails the request; a missing one (channel gone) breaks the session. */
  private settle(all: Countdown, err: Error, what: string): void {
    if (statusOf(err) === undefined) this.die(new NbdcryptError('ECONNECT', `${this.o.name}: SFTP ${what} got no answer (${err.message})`));
    else all.done(requestError(this.o.name, what, err));
  }

  private split(length: number, piece: (at: number, n: number) => void): void {
    for (let at = 0; at < length; at += this.o.chunk) piece(at, Math.min(this.o.chunk, length - at));
  }

  private send(p: Piece): void {
    this.waiting.push(p);
    this.dispatch();
  }

  private dispatch(): void {
    let head = 0;
    while (!this.death.failure && head < this.waiting.length) {
      const ch = this.leastLoaded();
      if (!ch || ch.pending >= MAX_PENDING_PER_CHANNEL) break;
      this.waiting[head++]!(ch);
    }
    if (head > 0) this.waiting.splice(0, head);
  }

  private leastLoaded(): SftpChannel | undefined {
    let best: SftpChannel | undefined;
    for (const c of this.chans) if (!best || c.load < best.load || (c.load === best.load && c.pending < best.pending)) best = c;
    return best;
  }

  private die(err: Error, destroyChannels = true): void {
    this.death.announce(err, () => {
      this.waiting.length = 0;
      if (destroyChannels) for (const c of this.chans) c.destroy();
    });
  }
}

/** Counts outstanding pieces of one request; the first error or the last piece settles it. */
class Countdown {
  private settled = false;
  private started = false;

  constructor(
    private left: number,
    private readonly finish: (err: Error | undefined) => void,
  ) {}

  add(): void {
    this.left++;
  }

  done(err?: Error): void {
    if (this.settled) return;
    this.left--;
    if (err) {
      this.settled = true;
      this.finish(err);
    } else if (this.left === 0 && this.started) {
      this.settled = true;
      this.finish(undefined);
    }
  }

  /** Called once every piece was handed out. */
  start(): void {
    this.started = true;
    if (!this.settled && this.left === 0) {
      this.settled = true;
      this.finish(undefined);
    }
  }
}
