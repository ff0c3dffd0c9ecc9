/**
 * One SFTP channel of a session with the image file open on it: its handle, what it has in
 * flight, and whether it wrote since its last fsync. Requests are pipelined: each call sends
 * one SFTP request at once and the callback runs when its answer arrives (sftp-client.ts
 * matches answers by request id). The server runs one channel's requests in order, so an fsync sent
 * after a write covers that write.
 */
import type { SftpClient } from './sftp-client.js';

export type Answer = (err: Error | undefined) => void;

export class SftpChannel {
  /** Requests sent and not yet answered. */
  pending = 0;
  /** Bytes of those requests. */
  load = 0;
  /** Wrote since the last fsync was sent. */
  dirty = false;
  /** Called after every answer (the session hands out queued pieces then). */
  onAnswered: () => void = () => undefined;

  constructor(
    readonly sftp: SftpClient,
    readonly handle: Buffer,
  ) {}

  /** Reads up to `length` bytes at `position` into `into[at..]`; `n` < length means a short read (0: end of file). */
  read(position: number, into: Buffer, at: number, length: number, cb: (err: Error | undefined, n: number) => void): void {
    this.track(length, (done) =>
      this.sftp.read(this.handle, position, into, at, length, (err, n) => {
        done();
        cb(err, err ? 0 : n);
      }),
    );
  }

  write(position: number, data: Buffer, at: number, length: number, cb: Answer): void {
    this.dirty = true;
    this.track(length, (done) =>
      this.sftp.write(this.handle, position, data, at, length, (err) => {
        done();
        cb(err);
      }),
    );
  }

  /** fsync@openssh.com on the handle: everything this channel wrote before is durable. */
  fsync(cb: Answer): void {
    this.dirty = false;
    this.track(0, (done) =>
      this.sftp.fsync(this.handle, (err) => {
        done();
        cb(err);
      }),
    );
  }

  /** Closes the handle, then the channel (the server finishes what it was sent first). */
  close(): void {
    try {
      this.sftp.close(this.handle, () => this.sftp.end());
    } catch {
      this.destroy();
    }
  }

  destroy(): void {
    try {
      this.sftp.destroy();
    } catch {
      // already closed
    }
  }

  private track(bytes: number, send: (done: () => void) => void): void {
    this.pending++;
    this.load += bytes;
    let answered = false;
    send(() => {
      if (answered) return;
      answered = true;
      this.pending--;
      this.load -= bytes;
      queueMicrotask(this.onAnswered);
    });
  }
}
