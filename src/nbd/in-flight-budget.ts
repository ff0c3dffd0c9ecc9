/**
 * Request bytes held across all connections of one server, shared fairly. Each connection has
 * its own limits too, but memory is a property of the process: with many connections (nbdcopy
 * opens four, the kernel one per -C) the per-connection limits add up. A request's bytes are
 * held from its admission until its reply has left (a READ's data waits in the socket while
 * the client does not read), so a client that stops reading keeps what it holds.
 *
 * Rule: a connection is admitted a request of n bytes iff it holds nothing, or
 * `held + n <= share` with `share = floor(maxBytes / holders)`, where holders are the
 * connections holding bytes now (the asker included). Invariants that follow:
 * - admission depends only on the asker's own holdings and the number of holders, never on
 *   what the others hold: a connection that stops reading its replies blocks only itself,
 *   and every other connection keeps at least one request moving and up to its share;
 * - a connection holds at most max(its share when last admitted, one request);
 * - with one holder it gets the whole budget, with k holders each gets maxBytes / k; bytes
 *   above a share that shrank when others arrived are not taken from it, but it is admitted
 *   nothing more until it is back under its share;
 * - so the total is at most maxBytes, plus one request per holder that exceeds its share
 *   (each holder's first request is always admitted), plus what holders kept from larger
 *   shares: memory grows with the number of stuck clients by at most one request each, never
 *   by what they would like to queue.
 * A connection that is refused waits; it is woken when it gives bytes back or when the number
 * of holders drops (its share grows).
 */
export class InFlightBudget {
  private holders = 0;
  private readonly waiting = new Set<BudgetAccount>();

  constructor(readonly maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`);
  }

  /** Connections holding bytes now. */
  get holderCount(): number {
    return this.holders;
  }

  /** The bytes one holder may hold when `holders` connections hold some. */
  shareFor(holders: number): number {
    return Math.floor(this.maxBytes / Math.max(1, holders));
  }

  /** A connection's account; `wake` is called when a refused request may now be admitted. */
  open(wake: () => void): BudgetAccount {
    return new BudgetAccount(this, wake);
  }

  /** @internal Bookkeeping for BudgetAccount. */
  holderChanged(account: BudgetAccount, holding: boolean): void {
    if (holding) {
      this.holders++;
      return;
    }
    this.holders--;
    // Every share just grew: let the waiting connections look again.
    if (this.waiting.size === 0) return;
    const woken = [...this.waiting].filter((a) => a !== account);
    for (const a of woken) this.waiting.delete(a);
    for (const a of woken) a.wakeUp();
  }

  /** @internal */
  setWaiting(account: BudgetAccount, waiting: boolean): void {
    if (waiting) this.waiting.add(account);
    else this.waiting.delete(account);
  }
}

export class BudgetAccount {
  private heldBytes = 0;
  private isWaiting = false;

  constructor(
    private readonly budget: InFlightBudget,
    private readonly wake: () => void,
  ) {}

  get held(): number {
    return this.heldBytes;
  }

  /** Whether a request of `bytes` may start now (see the rule in the module header). */
  admits(bytes: number): boolean {
    return this.heldBytes === 0 || this.heldBytes + bytes <= this.budget.shareFor(this.budget.holderCount);
  }

  take(bytes: number): void {
    if (bytes === 0) return;
    if (this.heldBytes === 0) this.budget.holderChanged(this, true);
    this.heldBytes += bytes;
  }

  give(bytes: number): void {
    if (bytes === 0) return;
    this.heldBytes -= bytes;
    if (this.heldBytes === 0) this.budget.holderChanged(this, false);
    if (this.isWaiting) this.wakeUp();
  }

  /** Calls `wake` once, the next time this account may have room. */
  waitForRoom(): void {
    if (this.isWaiting) return;
    this.isWaiting = true;
    this.budget.setWaiting(this, true);
  }

  /** The connection closed: no more wake-ups (bytes still held are given back as usual). */
  close(): void {
    this.isWaiting = false;
    this.budget.setWaiting(this, false);
  }

  /** @internal */
  wakeUp(): void {
    this.isWaiting = false;
    this.budget.setWaiting(this, false);
    this.wake();
  }
}
