/**
 * Request bytes in flight across all connections of one server. Each connection has its own
 * limit too, but memory is a property of the process: with many connections (nbdcopy opens
 * four, the kernel one per -C) the per-connection limits add up. A connection that finds the
 * budget spent stops reading its socket and is woken when any request finishes. A request is
 * admitted while the budget is not yet spent, so one large request never deadlocks.
 */
export class InFlightBudget {
  private used = 0;
  private readonly waiters = new Set<() => void>();

  constructor(readonly maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`);
  }

  get spent(): boolean {
    return this.used >= this.maxBytes;
  }

  take(bytes: number): void {
    this.used += bytes;
  }

  give(bytes: number): void {
    this.used -= bytes;
    if (this.spent || this.waiters.size === 0) return;
    const woken = [...this.waiters];
    this.waiters.clear();
    for (const wake of woken) wake();
  }

  /** Calls `wake` once, the next time bytes are given back while the budget is not spent. */
  waitFor(wake: () => void): void {
    this.waiters.add(wake);
  }

  forget(wake: () => void): void {
    this.waiters.delete(wake);
  }
}
