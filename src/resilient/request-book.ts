/**
 * The resilient device's bookkeeping of requests not yet settled: those waiting for a
 * session (held while the link is down, oldest first) and those handed to the current
 * session, in submission order. When a session dies, what it did not answer goes back to
 * the front of the queue; --io-timeout fails requests wherever they are, including one
 * whose reply is half received.
 */
import { NbdcryptError } from '../errors.js';
import { IdTable } from '../id-table.js';
import type { PendingRequest } from './pending-request.js';
import type { RemoteSession } from './session.js';

export class RequestBook {
  /** Requests waiting for a session, oldest first. */
  private readonly queue: PendingRequest[] = [];
  /** Requests handed to the current session and not settled, under `sentId` (an IdTable, not a Set: see there). */
  private readonly sent = new IdTable<PendingRequest>();
  private outstanding = 0;
  private readonly idleWaiters: (() => void)[] = [];

  /** Requests waiting for a session. */
  get held(): number {
    return this.queue.length;
  }

  get idle(): boolean {
    return this.outstanding === 0;
  }

  /** Resolves once no request is outstanding. */
  whenIdle(): Promise<void> {
    return this.outstanding === 0 ? Promise.resolve() : new Promise((r) => this.idleWaiters.push(r));
  }

  /** A new request: to `session` if there is one, else into the queue. */
  add(req: PendingRequest, session: RemoteSession | undefined): void {
    this.outstanding++;
    if (session) this.sendTo(session, req);
    else this.queue.push(req);
  }

  /** Marks `req` settled; false if it already was (timed out, or failed by close). */
  settle(req: PendingRequest): boolean {
    if (req.settled) return false;
    req.settled = true;
    this.sent.take(req.sentId);
    if (--this.outstanding === 0) for (const w of this.idleWaiters.splice(0)) w();
    return true;
  }

  fail(req: PendingRequest, err: Error): void {
    if (this.settle(req)) req.reject(err);
  }

  /** The session died: what it did not answer goes back to the front of the queue. */
  takeBack(): void {
    const unanswered = this.sent.clear().filter((r) => !r.settled);
    this.queue.unshift(...unanswered);
  }

  /** Hands the held requests to `session`, oldest first, while `current()` still returns it. */
  resend(session: RemoteSession, current: () => RemoteSession | undefined): void {
    const held = this.queue.splice(0);
    for (let i = 0; i < held.length; i++) {
      if (current() !== session) {
        // It died while taking them: the rest wait behind the ones it did not answer.
        this.queue.push(...held.slice(i));
        return;
      }
      if (!held[i]!.settled) this.sendTo(session, held[i]!);
    }
  }

  failAll(err: Error): void {
    for (const r of this.queue.splice(0)) this.fail(r, err);
    for (const r of this.sent.inOrder()) this.fail(r, err);
  }

  /** Fails every request whose deadline passed, wherever it is; `error` names the cause. */
  expire(now: number, error: (r: PendingRequest) => NbdcryptError): void {
    for (const r of [...this.queue, ...this.sent.inOrder()]) if (!r.settled && r.deadline > 0 && now > r.deadline) this.fail(r, error(r));
    if (this.queue.some((r) => r.settled)) this.queue.splice(0, this.queue.length, ...this.queue.filter((r) => !r.settled));
  }

  private sendTo(session: RemoteSession, req: PendingRequest): void {
    req.sentId = this.sent.add(req);
    session.submit(req);
  }
}
