/**
 * Logs a repeating condition once per distinct cause, then at most once a minute with the
 * number of repeats in between, so a remote that fails the same way on every reconnect
 * cannot flood standard error. Causes that differ only in numbers (cookies, offsets,
 * attempt counts) are the same cause.
 */
import { log, type LogLevel } from '../log.js';

const WINDOW_MS = 60_000;

export class RateLimitedLog {
  private readonly seen = new Map<string, { at: number; suppressed: number }>();

  /** Logs `msg` unless `cause` was logged less than a minute ago; returns whether it did. */
  emit(level: Exclude<LogLevel, 'debug'>, cause: string, msg: string): boolean {
    const key = cause.replace(/\d+(\.\d+)?/g, '#');
    const now = Date.now();
    const s = this.seen.get(key);
    if (s && now - s.at < WINDOW_MS) {
      s.suppressed++;
      return false;
    }
    const repeats = s && s.suppressed > 0 ? ` (the same happened ${s.suppressed} more times in the last ${Math.round((now - s.at) / 1000)} s)` : '';
    this.seen.set(key, { at: now, suppressed: 0 });
    log[level](msg + repeats);
    return true;
  }

  /** Forgets every cause (the condition ended). */
  reset(): void {
    this.seen.clear();
  }
}
