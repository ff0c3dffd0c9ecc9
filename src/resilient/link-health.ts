/**
 * Judges how a session ended, to pace and bound the reopen loop. A session that broke the
 * protocol, or died with requests outstanding before answering any, is a failed attempt:
 * the backoff keeps growing and its messages are rate limited. Any other drop (an idle
 * link cut, a link cut after answers) was a healthy session: the next reopen is immediate
 * and the backoff starts over. A remote that breaks the protocol again right after
 * each of MAX_VIOLATIONS consecutive reconnects is given up on with a clear error, since
 * retrying it only spins (a wrong cookie, a duplicate reply, garbage instead of a reply).
 * Repeated causes are logged once a minute, not once per attempt.
 */
import { NbdcryptError, isNbdcryptError } from '../errors.js';
import { RateLimitedLog } from './rate-limited-log.js';
import { Backoff } from './reopen.js';

/** Consecutive protocol violations right after reconnecting before giving up. */
export const MAX_VIOLATIONS = 10;
/** A session that lived this long was healthy, whatever ended it. */
const STABLE_MS = 60_000;

export class LinkHealth {
  readonly backoff = new Backoff();
  readonly problems = new RateLimitedLog();
  private violations = 0;
  private openedAt = Date.now();
  private answered = 0;
  /** Whether the last session to die had been healthy. */
  private lastHealthy = true;

  constructor(private readonly name: string) {}

  /** A new session is in use. */
  opened(): void {
    this.openedAt = Date.now();
    this.answered = 0;
  }

  /** The current session answered a request. */
  answer(): void {
    this.answered++;
  }

  /** Whether the reconnect now under way follows a healthy session (its messages are not rate limited). */
  get afterHealthySession(): boolean {
    return this.lastHealthy;
  }

  /** The session died of `err` with `unanswered` requests outstanding; returns the error to give up with, if any. */
  died(err: Error, unanswered: number): Error | undefined {
    const proto = isNbdcryptError(err, 'EPROTO');
    const stable = Date.now() - this.openedAt >= STABLE_MS;
    this.lastHealthy = stable || !(proto || (this.answered === 0 && unanswered > 0));
    if (this.lastHealthy) {
      this.backoff.reset();
      this.problems.reset();
    }
    if (proto) this.violations = stable ? 1 : this.violations + 1;
    else if (this.lastHealthy) this.violations = 0;
    return this.verdict(err);
  }

  /** A reopen attempt failed with `err`; returns the error to give up with, if any. */
  attemptFailed(err: Error): Error | undefined {
    this.lastHealthy = false;
    if (isNbdcryptError(err, 'EPROTO')) this.violations++;
    return this.verdict(err);
  }

  private verdict(err: Error): Error | undefined {
    if (this.violations < MAX_VIOLATIONS) return undefined;
    return new NbdcryptError('EPROTO', `${this.name}: the remote broke the protocol right after each of ${this.violations} reconnects (last: ${err.message}); check that the target is a working server of the right protocol`);
  }
}
