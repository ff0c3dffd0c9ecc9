/**
 * The replay log: every write-type request the remote acknowledged since the last
 * completed flush, in acknowledgement order. A remote that restarts (or a link that drops)
 * may lose writes it acknowledged but never flushed; after a reopen they are re-sent before
 * anything newer (docs/ARCHITECTURE.md, Durability and replay). A completed flush drops the
 * entries acknowledged before it was issued.
 */
import { unpooled, type RequestBuffers } from '../block/buffer-pool.js';
import type { RequestKind } from './session.js';

export interface LoggedWrite {
  /** Acknowledgement sequence number (monotonic). */
  seq: number;
  kind: Extract<RequestKind, 'write' | 'zeroes' | 'trim'>;
  offset: number;
  length: number;
  /** 'write' payload, owned by the log. */
  data?: Buffer;
  /** Give `data` back to the log's RequestBuffers when the entry is dropped (false: someone else owns it). */
  release?: boolean;
}

export class ReplayLog {
  private entries: (LoggedWrite | undefined)[] = [];
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
      this.entries[this.head] = undefined; // let the payload go
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Entries in acknowledgement order (a snapshot). */
  list(): LoggedWrite[] {
    return this.entries.slice(this.head) as LoggedWrite[];
  }

  clear(): void {
    this.dropThrough(Number.MAX_SAFE_INTEGER);
  }
}
