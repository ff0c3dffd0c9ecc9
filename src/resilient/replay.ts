/**
 * Re-sends the replay log on a freshly opened session, before any other request: a write
 * acknowledged before the drop but not yet flushed must land before anything newer.
 * Entries go out pipelined, except that an entry overlapping one still in flight waits for
 * it, so overlapping writes keep their acknowledgement order.
 */
import { NbdcryptError } from '../errors.js';
import type { LoggedWrite } from './replay-log.js';
import type { RemoteSession, SessionRequest } from './session.js';

/** Marks an error that retrying cannot cure (the reopen loop gives up on it). */
export function fatal(e: NbdcryptError): NbdcryptError {
  return Object.assign(e, { fatal: true });
}

/** Bytes of replayed payload in flight per channel of the session. */
const WINDOW_BYTES = 32 * 1024 * 1024;

/** Resolves once every entry was acknowledged; rejects if the session dies or the remote refuses one. */
export function replayWrites(session: RemoteSession, entries: LoggedWrite[], name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (entries.length === 0) return resolve();
    const window = WINDOW_BYTES * Math.max(1, session.channels);
    let next = 0;
    let done = 0;
    let bytes = 0;
    let failed = false;
    const inflight = new Set<LoggedWrite>();
    const fail = (e: Error): void => {
      if (failed) return;
      failed = true;
      reject(e);
    };
    session.whenDead(fail);
    const overlaps = (e: LoggedWrite): boolean => {
      for (const f of inflight) if (e.offset < f.offset + f.length && f.offset < e.offset + e.length) return true;
      return false;
    };
    const pump = (): void => {
      while (!failed && next < entries.length) {
        const e = entries[next]!;
        if (overlaps(e) || (bytes >= window && inflight.size > 0)) return;
        next++;
        inflight.add(e);
        bytes += e.data?.length ?? 0;
        const req: SessionRequest = {
          kind: e.kind,
          offset: e.offset,
          length: e.length,
          data: e.data,
          fua: false,
          done: (err) => {
            inflight.delete(e);
            bytes -= e.data?.length ?? 0;
            if (err) {
              fail(fatal(new NbdcryptError('EIO', `${name}: replaying an acknowledged ${e.kind} at offset ${e.offset} failed (${err.message}); the remote may have lost data`)));
              return;
            }
            if (++done === entries.length) resolve();
            else pump();
          },
        };
        session.submit(req);
      }
    };
    pump();
  });
}
