/**
 * The replay log: every write-type request the remote acknowledged since the last
 * successful flush, in acknowledgement order. A remote that restarts (or a link that drops)
 * may lose writes it acknowledged but never flushed; after a reconnect these are re-sent
 * before anything newer (docs/ARCHITECTURE.md, Durability and replay). A flush that succeeds
 * on every connection drops the entries acknowledged before that flush was issued. FLUSH
 * semantics: docs/formats.md (NBD transmission).
 */
import { unpooled, type RequestBuffers } from '../block/buffer-pool.js';

export interface LoggedWrite {
  /** Acknowledgement sequence number (monotonic). */
  seq: number;
  type: number; // Cmd.WRITE, Cmd.WRITE_ZEROES or Cmd.TRIM
  flags: number;
  offset: number;
  length: number;
  /** WRITE payload, owned by the log. */
  data?: Buffer;
  /** Give `data` back to the log's RequestBuffers when the entry is dropped (false: other entries share it). */
  release?: boolean;
}

export class ReplayLog {
  private entries: LoggedWrite[] = [];
  private head = 0;
  private nextSeq = 1;
  /** Payload bytes held (what --replay-limit bounds). */
  bytes = 0;

  /** `buffers`: where dropped payloads go back to. */
  constructor(private readonly buffers: RequestBuffers = unpooled) {}

  get size(): number {
    return this.entries.length - this.head;
  }

  /** Sequence number of the newest entry so far (0 if none was ever added). */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  add(e: Omit<LoggedWrite, 'seq'>): void {
    this.entries.push({ ...e, seq: this.nextSeq++ });
    this.bytes += e.data?.length ?? 0;
  }

  /** Forgets every entry with seq ≤ `seq` (they are durable now). */
  dropThrough(seq: number): void {
    while (this.head < this.entries.length && this.entries[this.head]!.seq <= seq) {
      const e = this.entries[this.head]!;
      this.bytes -= e.data?.length ?? 0;
      if (e.release) this.buffers.release(e.data);
      this.entries[this.head] = undefined as unknown as LoggedWrite; // release the payload
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Entries in acknowledgement order (a snapshot). */
  list(): LoggedWrite[] {
    return this.entries.slice(this.head);
  }

  clear(): void {
    this.dropThrough(Number.MAX_SAFE_INTEGER);
  }
}
