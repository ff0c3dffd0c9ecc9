/**
 * SFTP v3 client on one raw `sftp` subsystem channel (the subset of docs/sftp.md, Our
 * client). Requests are pipelined: each call sends one packet and its callback runs when the
 * answer with its id arrives. The data path copies once: a DATA answer goes from the
 * channel's incoming chunks straight into the read's destination; a WRITE sends its header
 * with the first SSH packet's worth of payload, then the rest of the caller's payload as a
 * second channel write, uncopied (the caller keeps it intact until the answer, which comes
 * after the server got it). The session above bounds requests
 * in flight per channel, which bounds what the channel buffers: no further backpressure here.
 *
 * Errors: a STATUS answer fails the request with an Error whose `code` is the server's status
 * number (sftp-status.ts); a channel that closes fails every pending request with an Error
 * without a numeric code (a lost link, not an answer). A malformed packet (too long, too
 * short, unknown type or id, DATA longer than asked) ends the channel: the peer may be hostile.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { FrameParser, type FrameSink } from './sftp-frames.js';
import * as W from './sftp-wire.js';
import { IdTable } from '../id-table.js';

export type Done = (err: Error | undefined) => void;

type Pending =
  | { kind: 'status'; cb: Done }
  | { kind: 'handle'; cb: (err: Error | undefined, handle: Buffer) => void }
  | { kind: 'attrs'; cb: (err: Error | undefined, attrs: W.FileAttrs) => void }
  | { kind: 'limits'; cb: (err: Error | undefined, limits: W.SftpLimits) => void }
  | { kind: 'read'; into: Buffer; at: number; length: number; cb: (err: Error | undefined, n: number) => void };

/** An answer of the server: `code` is its SSH_FX_* status. */
export class SftpStatusError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const NONE = Buffer.alloc(0);
/** CHANNEL_DATA payload size OpenSSH uses for session channels (RFC 4254 §5.1 maximum packet size). */
const SSH_PACKET = 32 * 1024;

export class SftpClient extends EventEmitter implements FrameSink {
  /** Extensions the server offered in VERSION (name -> data). */
  extensions = new Map<string, string>();
  /** The server's limits@openssh.com answer, if it offered that extension. */
  limits: W.SftpLimits | undefined;
  /** Requests sent and not answered, under their request ids (an IdTable, not a Map: see there). */
  private readonly pending = new IdTable<Pending>(2 ** 32, 0);
  private failure: Error | undefined;
  private readonly parser = new FrameParser(this);
  private onVersion: ((err: Error | undefined) => void) | undefined;

  private constructor(readonly channel: Duplex) {
    super();
    channel.on('data', (chunk: Buffer) => this.parser.push(chunk));
    channel.on('error', (e: Error) => {
      this.fail(new Error(`SFTP channel failed (${e.message})`));
      this.emitError(e);
    });
    channel.on('end', () => this.emit('end'));
    channel.on('close', () => {
      this.fail(new Error('SFTP channel closed'));
      this.emit('close');
    });
  }

  /**
   * Sends INIT on a fresh subsystem channel, waits for VERSION, then (with `askLimits`) asks
   * for limits if offered; a server that has not answered both within `timeoutMs` fails the
   * start. The limits are one connection's, so one channel of it asking is enough.
   */
  static async start(channel: Duplex, timeoutMs = 30_000, askLimits = true): Promise<SftpClient> {
    const c = new SftpClient(channel);
    const timer = setTimeout(() => c.fail(new Error(`no answer to SFTP INIT within ${timeoutMs} ms`)), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        c.onVersion = (err) => (err ? reject(err) : resolve());
        channel.write(W.encodeInit());
      });
      if (askLimits && c.extensions.get('limits@openssh.com') === '1') {
        c.limits = await new Promise<W.SftpLimits>((resolve, reject) =>
          c.request((id) => W.encodeLimits(id), { kind: 'limits', cb: (err, l) => (err ? reject(err) : resolve(l)) }),
        );
      }
    } catch (e) {
      c.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return c;
  }

  open(path: string, pflags: number, cb: (err: Error | undefined, handle: Buffer) => void): void {
    this.request((id) => W.encodeOpen(id, path, pflags), { kind: 'handle', cb });
  }

  close(handle: Buffer, cb: Done): void {
    this.request((id) => W.encodeClose(id, handle), { kind: 'status', cb });
  }

  /** Reads up to `length` bytes at `position` into `into[at..]`; n < length is a short read, 0 end of file. */
  read(handle: Buffer, position: number, into: Buffer, at: number, length: number, cb: (err: Error | undefined, n: number) => void): void {
    this.request((id) => W.encodeRead(id, handle, position, length), { kind: 'read', into, at, length, cb });
  }

  write(handle: Buffer, position: number, data: Buffer, at: number, length: number, cb: Done): void {
    const id = this.track({ kind: 'status', cb });
    if (id === undefined) return;
    const header = W.encodeWriteHeader(id, handle, position, length);
    // The header alone would be an SSH packet of its own (one more encryption and socket
    // write per request); it goes out with the payload's head, filling the first packet.
    const head = Math.min(length, SSH_PACKET - header.length);
    this.channel.write(head > 0 ? Buffer.concat([header, data.subarray(at, at + head)]) : header);
    if (head < length) this.channel.write(data.subarray(at + head, at + length));
  }

  fstat(handle: Buffer, cb: (err: Error | undefined, attrs: W.FileAttrs) => void): void {
    this.request((id) => W.encodeFstat(id, handle), { kind: 'attrs', cb });
  }

  stat(path: string, cb: (err: Error | undefined, attrs: W.FileAttrs) => void): void {
    this.request((id) => W.encodeStat(id, path), { kind: 'attrs', cb });
  }

  setSize(handle: Buffer, size: number, cb: Done): void {
    this.request((id) => W.encodeFsetstatSize(id, handle, size), { kind: 'status', cb });
  }

  remove(path: string, cb: Done): void {
    this.request((id) => W.encodeRemove(id, path), { kind: 'status', cb });
  }

  /** fsync@openssh.com: what this channel wrote to the handle before is durable. */
  fsync(handle: Buffer, cb: Done): void {
    this.request((id) => W.encodeFsync(id, handle), { kind: 'status', cb });
  }

  /** Sends EOF: the server finishes what it was sent, then closes the channel. */
  end(): void {
    this.channel.end();
  }

  destroy(): void {
    this.fail(new Error('SFTP channel closed'));
    this.channel.destroy();
  }

  // ---- FrameSink: what the parser found ----

  version(body: W.Reader): void {
    const done = this.onVersion;
    if (!done) throw new W.WireError('a second VERSION packet');
    const v = body.u32();
    if (v !== W.SFTP_VERSION) throw new W.WireError(`the server speaks SFTP version ${v}, not ${W.SFTP_VERSION}`);
    this.extensions = W.decodeExtensions(body);
    this.onVersion = undefined;
    done(undefined);
  }

  /** Where a DATA answer's payload goes, or a WireError if the id or length is wrong. */
  dataTarget(id: number, length: number): { into: Buffer; at: number } {
    const p = this.peek(id, W.FXP.DATA);
    if (p.kind !== 'read') throw new W.WireError(`DATA answers request ${id}, which is not a read`);
    if (length > p.length) throw new W.WireError(`DATA of ${length} bytes answers a read of ${p.length}`);
    return { into: p.into, at: p.at };
  }

  dataDone(id: number, length: number): void {
    const p = this.pending.take(id) as Extract<Pending, { kind: 'read' }>;
    p.cb(undefined, length);
  }

  /** A whole answer; the request stays pending (failed by broken()) until it is decoded. */
  answer(type: number, id: number, body: W.Reader): void {
    const p = this.peek(id, type);
    if (type === W.FXP.STATUS) {
      const s = W.decodeStatus(body);
      if (s.code === 0 && p.kind !== 'status') throw new W.WireError(`status OK answers request ${id}, which expects ${p.kind}`);
      this.pending.take(id);
      if (s.code === 0 && p.kind === 'status') return p.cb(undefined);
      // EOF on a read is an answer of 0 bytes, as a short read at the end of the file.
      if (s.code === 1 && p.kind === 'read') return p.cb(undefined, 0);
      return failWith(p, new SftpStatusError(s.code, s.message));
    }
    // Decoded before the request leaves the map: a short packet leaves it for broken() to fail.
    if (type === W.FXP.HANDLE && p.kind === 'handle') return this.settle(id, p.cb, body.bytes());
    if (type === W.FXP.ATTRS && p.kind === 'attrs') return this.settle(id, p.cb, W.decodeAttrs(body));
    if (type === W.FXP.EXTENDED_REPLY && p.kind === 'limits') return this.settle(id, p.cb, W.decodeLimits(body));
    throw new W.WireError(`packet type ${type} answers request ${id}, which expects ${p.kind}`);
  }

  /** A malformed packet: fail everything, drop the channel. */
  broken(e: W.WireError): void {
    const err = new Error(`SFTP server sent a malformed packet: ${e.message}`);
    this.fail(err);
    this.emitError(err);
    this.channel.destroy();
  }

  // ----

  /** Registers `p` and returns its request id; undefined (and `p` failed) when the channel is gone. */
  private track(p: Pending): number | undefined {
    if (this.failure) {
      const f = this.failure;
      queueMicrotask(() => failWith(p, f));
      return undefined;
    }
    return this.pending.add(p);
  }

  /** Sends the request packet `build` makes for `p`'s id, unless the channel is gone. */
  private request(build: (id: number) => Buffer, p: Pending): void {
    const id = this.track(p);
    if (id !== undefined) this.channel.write(build(id));
  }

  private peek(id: number, type: number): Pending {
    const p = this.pending.get(id);
    if (!p) throw new W.WireError(`packet type ${type} answers request ${id}, which is not pending`);
    return p;
  }

  private settle<T>(id: number, cb: (err: Error | undefined, v: T) => void, v: T): void {
    this.pending.take(id);
    cb(undefined, v);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.parser.stop();
    const v = this.onVersion;
    this.onVersion = undefined;
    v?.(this.failure);
    for (const p of this.pending.clear()) failWith(p, this.failure);
  }

  private emitError(e: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }
}

function failWith(p: Pending, err: Error): void {
  switch (p.kind) {
    case 'status':
      return p.cb(err);
    case 'handle':
      return p.cb(err, NONE);
    case 'attrs':
      return p.cb(err, {});
    case 'limits':
      return p.cb(err, { maxPacketLength: 0, maxReadLength: 0, maxWriteLength: 0, maxOpenHandles: 0 });
    case 'read':
      return p.cb(err, 0);
  }
}
