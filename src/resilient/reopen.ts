/**
 * The reopen loop after a session died: open a new session with bounded exponential
 * backoff (100 ms doubling to 5 s), check it reaches the same disk (size, writability,
 * multi-channel flushes), replay the writes acknowledged since the last completed flush,
 * then hand the session back. Gives up on errors retrying cannot cure (a refused host key,
 * failed authentication, a missing export, a changed disk, a rejected replay) and when the
 * owner says so (a remote that keeps breaking its protocol).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { NbdcryptError, isNbdcryptError } from '../errors.js';
import type { LoggedWrite } from './replay-log.js';
import { fatal, replayWrites } from './replay.js';
import type { RemoteSession, SessionFacts, SessionOpener } from './session.js';

const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 5000;

/** Waits before reopen attempts: none at first, then 100 ms doubling to 5 s until reset. */
export class Backoff {
  private delay = 0;

  /** The wait before the next attempt (and grows the one after). */
  next(): number {
    const d = this.delay;
    this.delay = d === 0 ? BACKOFF_START_MS : Math.min(d * 2, BACKOFF_MAX_MS);
    return d;
  }

  /** The wait `next()` will return. */
  peek(): number {
    return this.delay;
  }

  reset(): void {
    this.delay = 0;
  }
}

export interface ReopenContext {
  readonly opener: SessionOpener;
  /** What the first session reported; later ones must match. */
  readonly first: { facts: SessionFacts; channels: number };
  readonly backoff: Backoff;
  /** Aborted when the device closes or gives up: stop quietly. */
  readonly signal: AbortSignal;
  /** The replay log at this moment, in acknowledgement order. */
  replayEntries(): LoggedWrite[];
  /** The new session, replay done. */
  recovered(session: RemoteSession, report: { attempt: number; seconds: number; replayed: number }): void;
  /** An attempt failed with a curable error; returns an error to give up with, or undefined to go on. */
  attemptFailed(err: Error, attempt: number, nextWaitMs: number): Error | undefined;
  /** Give up with `err`. */
  failed(err: Error): void;
}

/** Errors retrying cannot cure. */
export function isFatal(e: Error): boolean {
  if ((e as { fatal?: boolean }).fatal) return true;
  return isNbdcryptError(e) && (e.code === 'EHOSTKEY' || e.code === 'EAUTH' || e.code === 'ENOEXPORT');
}

/** Throws (fatal) unless `s` reaches the same disk as the first session. */
function checkSameDisk(name: string, first: ReopenContext['first'], s: RemoteSession): void {
  const was = first.facts;
  const now = s.facts;
  if (now.size !== was.size) {
    throw fatal(new NbdcryptError('EIO', `${name}: the export size changed from ${was.size} to ${now.size} bytes while reconnecting; refusing to replay writes onto a different disk`));
  }
  if (now.caps.readOnly && !was.caps.readOnly) {
    throw fatal(new NbdcryptError('EIO', `${name}: the export became read-only while reconnecting`));
  }
  if (first.channels > 1 && !now.caps.multiConn) {
    throw fatal(new NbdcryptError('EIO', `${name}: the export no longer allows multiple connections`));
  }
}

export async function reopen(ctx: ReopenContext): Promise<void> {
  const name = ctx.opener.name;
  const started = Date.now();
  const closed = (): boolean => ctx.signal.aborted;
  for (let attempt = 1; ; attempt++) {
    const wait = ctx.backoff.next();
    if (wait > 0) await sleep(wait, undefined, { signal: ctx.signal }).catch(() => undefined);
    if (closed()) return;
    let session: RemoteSession | undefined;
    try {
      session = await ctx.opener.open();
      if (closed()) throw new Error('closed');
      checkSameDisk(name, ctx.first, session);
      const entries = ctx.replayEntries();
      await replayWrites(session, entries, name);
      if (closed()) throw new Error('closed');
      ctx.recovered(session, { attempt, seconds: (Date.now() - started) / 1000, replayed: entries.length });
      return;
    } catch (e) {
      session?.destroy();
      if (closed()) return;
      const err = e instanceof Error ? e : new Error(String(e));
      const giveUp = isFatal(err) ? err : ctx.attemptFailed(err, attempt, ctx.backoff.peek());
      if (giveUp) {
        ctx.failed(giveUp);
        return;
      }
    }
  }
}
