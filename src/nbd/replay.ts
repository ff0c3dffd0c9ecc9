/**
 * Re-sends the replay log on fresh connections after a reconnect, before any other request:
 * a write acknowledged before the drop but not yet flushed must land before anything newer
 * (docs/ARCHITECTURE.md, Durability and replay). Entries go out pipelined over all connections,
 * except that an entry overlapping one still in flight waits for it, so overlapping writes keep
 * their acknowledgement order. FLUSH semantics: docs/formats.md (NBD transmission).
 */
import { NbdcryptError } from '../errors.js';
import type { NbdConnection, WireRequest } from './client-connection.js';
import type { LoggedWrite } from './replay-log.js';

/** Marks an error that retrying cannot cure (the recovery loop gives up on it). */
export function fatal(e: NbdcryptError): NbdcryptError {
  return Object.assign(e, { fatal: true });
}

/** Bytes of replayed payload in flight per connection. */
const WINDOW_BYTES = 32 * 1024 * 1024;

export function replayWrites(conns: NbdConnection[], entries: LoggedWrite[], name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let next = 0;
    let done = 0;
    let failed = false;
    const inflight = new Set<LoggedWrite>();
    const fail = (e: Error): void => {
      if (failed) return;
      failed = true;
      reject(e);
    };
    for (const c of conns) {
      c.onCloseHandler = (err) => fail(err);
      if (c.isClosed) fail(new NbdcryptError('EIO', `${name}: a connection closed while replaying writes`));
    }
    const overlaps = (e: LoggedWrite): boolean => {
      for (const f of inflight) if (e.offset < f.offset + f.length && f.offset < e.offset + e.length) return true;
      return false;
    };
    const pump = (): void => {
      while (!failed && next < entries.length) {
        const e = entries[next]!;
        if (overlaps(e)) return;
        let conn = conns[0]!;
        for (const c of conns) if (c.load < conn.load) conn = c;
        if (conn.load >= WINDOW_BYTES && conn.pending > 0) return;
        next++;
        inflight.add(e);
        const req: WireRequest = {
          type: e.type,
          flags: e.flags,
          offset: e.offset,
          length: e.length,
          data: e.data,
          onReply: (error) => {
            inflight.delete(e);
            if (error !== 0) {
              fail(fatal(new NbdcryptError('EIO', `${name}: replaying an acknowledged write at offset ${e.offset} failed with error ${error}; the remote may have lost data`)));
              return;
            }
            if (++done === entries.length) resolve();
            else pump();
          },
        };
        conn.send(req);
      }
    };
    pump();
  });
}
