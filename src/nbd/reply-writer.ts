/**
 * Writes simple replies to one client in completion order. Replies finished in the same
 * event-loop turn leave in one corked writev; once EARLY_FLUSH bytes are queued they go at once,
 * so big reads stream while later ones are still being copied. When more than
 * `maxQueuedBytes` wait in the socket's buffer (the client is not reading), `waitingDrain` is
 * set until the socket drains, and the caller stops taking requests.
 * Spec: docs/formats.md (NBD transmission).
 */
import type { Socket } from 'node:net';
import { writeSimpleReply } from './codec.js';
import { SIMPLE_REPLY_SIZE } from './protocol.js';

/** Queued reply bytes that trigger an immediate writev instead of waiting for the turn's end. */
const EARLY_FLUSH = 256 * 1024;

export class ReplyWriter {
  private corked = false;
  private corkedBytes = 0;
  private uncorkScheduled = false;
  private drainWait = false;

  constructor(
    private readonly socket: Socket,
    private readonly maxQueuedBytes: number,
    /** Called when the socket drained after `waitingDrain` was set. */
    private readonly onDrain: () => void,
  ) {}

  /** True while the client has more than maxQueuedBytes of replies unread. */
  get waitingDrain(): boolean {
    return this.drainWait;
  }

  /**
   * Queues a reply. `onSent` runs once `data` has been written to the socket (or cannot be),
   * at once if there is no data: the caller frees what the data cost then.
   */
  send(cookie: bigint, error: number, data?: Buffer, onSent?: () => void): void {
    const s = this.socket;
    if (s.destroyed || !s.writable) {
      onSent?.();
      return;
    }
    if (!this.corked) {
      this.corked = true;
      s.cork();
      if (!this.uncorkScheduled) {
        this.uncorkScheduled = true;
        process.nextTick(() => {
          this.uncorkScheduled = false;
          this.flush();
        });
      }
    }
    const header = Buffer.allocUnsafe(SIMPLE_REPLY_SIZE);
    writeSimpleReply(header, 0, { error, cookie });
    s.write(header);
    this.corkedBytes += SIMPLE_REPLY_SIZE;
    if (data && data.length > 0) {
      s.write(data, onSent && (() => onSent()));
      this.corkedBytes += data.length;
    } else onSent?.();
    if (this.corkedBytes >= EARLY_FLUSH) this.flush();
  }

  /** Sends whatever is corked now. */
  flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.corkedBytes = 0;
    const s = this.socket;
    s.uncork();
    if (!this.drainWait && !s.destroyed && s.writableLength > this.maxQueuedBytes) {
      this.drainWait = true;
      s.once('drain', () => {
        this.drainWait = false;
        this.onDrain();
      });
    }
  }
}
