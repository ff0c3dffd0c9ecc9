/**
 * Keeps the replay log within --replay-limit without stalling the writer. A flush costs a
 * round trip plus the remote's fdatasync, and with one flush at a time the log must hold
 * about two of those periods of writes, which caps writes at limit / (2 · flush time), low
 * on a WAN (docs/performance.md, Replay log). So flushes are pipelined: a new one starts
 * whenever a quarter of the limit was logged since the last one started (up to FLUSHES at
 * once), and only a full log makes new writes wait, for the oldest flush in flight.
 */
import { log } from '../log.js';
import type { ReplayLog } from './replay-log.js';

/** Background flushes in flight at once. */
const FLUSHES = 3;

export class ReplayBudget {
  /** Flushes started to trim the replay log, oldest first. */
  private readonly flushes: Promise<void>[] = [];
  /** Payload bytes logged since the last of those started. */
  private loggedSinceFlush = 0;

  constructor(
    private readonly limit: number,
    private readonly replay: ReplayLog,
    private readonly flush: () => Promise<void>,
    private readonly name: string,
  ) {}

  /** Counts bytes just added to the log. */
  logged(bytes: number): void {
    this.loggedSinceFlush += bytes;
  }

  /** Resolves when a write may go ahead; starts background flushes as the log fills. */
  async room(): Promise<void> {
    if (this.loggedSinceFlush >= this.limit / 4 && this.flushes.length < FLUSHES) this.startFlush();
    while (this.replay.bytes >= this.limit) {
      log.debug(`${this.name}: replay log holds ${this.replay.bytes} bytes; writes wait for a flush`);
      await (this.flushes[0] ?? this.startFlush());
    }
  }

  private startFlush(): Promise<void> {
    this.loggedSinceFlush = 0;
    const p: Promise<void> = this.flush().finally(() => this.flushes.splice(this.flushes.indexOf(p), 1));
    p.catch(() => undefined); // nobody may wait on a background flush; the device reports failures
    this.flushes.push(p);
    return p;
  }
}
