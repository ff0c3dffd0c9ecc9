/**
 * The NBD client's reconnect loop: after a drop, open every connection again with bounded
 * exponential backoff (100 ms doubling to 5 s), check the export is the same disk (size,
 * writability, multi-conn), replay the writes acknowledged since the last flush, then hand
 * the connections back. Gives up only on errors retrying cannot cure (client-open.ts).
 * Rules: docs/ARCHITECTURE.md (Durability and replay); peers: docs/formats.md (NBD peers).
 */
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';
import type { Transport } from '../transport/transport.js';
import type { NbdConnection } from './client-connection.js';
import { isFatal, openConnection } from './client-open.js';
import type { RequestIo } from './request-io.js';
import { TF } from './protocol.js';
import type { LoggedWrite } from './replay-log.js';
import { fatal, replayWrites } from './replay.js';

const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 5000;

export interface RecoveryTarget {
  readonly name: string;
  readonly transport: Transport;
  readonly exportName: string;
  /** Export size and transmission flags seen at the first connect. */
  readonly size: number;
  readonly flags: number;
  readonly connections: number;
  /** Request buffers and transient-bytes reporting for the new connections. */
  readonly io: RequestIo;
  /** False once the client was closed or recovered otherwise: stop quietly. */
  stillRecovering(): boolean;
  /** The replay log at this moment, in acknowledgement order. */
  replayEntries(): LoggedWrite[];
  /** The new connections, replay done. */
  recovered(conns: NbdConnection[], report: { attempt: number; seconds: number; replayed: number }): void;
  /** An error retrying cannot cure. */
  failed(err: Error): void;
}

/** Opens all connections once and checks they reach the same disk; throws on any failure. */
async function reopen(t: RecoveryTarget, conns: NbdConnection[]): Promise<void> {
  for (let i = 0; i < t.connections; i++) {
    const { conn, info } = await openConnection(t.transport, t.exportName, t.name, t.io);
    conns.push(conn);
    if (info.size !== t.size) {
      throw fatal(new NbdcryptError('EIO', `${t.name}: the export size changed from ${t.size} to ${info.size} bytes while reconnecting; refusing to replay writes onto a different disk`));
    }
    if (info.flags & TF.READ_ONLY && !(t.flags & TF.READ_ONLY)) {
      throw fatal(new NbdcryptError('EIO', `${t.name}: the export became read-only while reconnecting`));
    }
    if (t.connections > 1 && !(info.flags & TF.CAN_MULTI_CONN)) {
      throw fatal(new NbdcryptError('EIO', `${t.name}: the export no longer allows multiple connections`));
    }
  }
}

export async function recover(t: RecoveryTarget): Promise<void> {
  const started = Date.now();
  let delay = BACKOFF_START_MS;
  for (let attempt = 1; ; attempt++) {
    if (!t.stillRecovering()) return;
    const conns: NbdConnection[] = [];
    try {
      await reopen(t, conns);
      if (!t.stillRecovering()) throw new Error('closed');
      const entries = t.replayEntries();
      if (entries.length) await replayWrites(conns, entries, t.name);
      if (!t.stillRecovering()) throw new Error('closed');
      t.recovered(conns, { attempt, seconds: (Date.now() - started) / 1000, replayed: entries.length });
      return;
    } catch (e) {
      conns.forEach((c) => c.destroy());
      if (!t.stillRecovering()) return;
      const err = e instanceof Error ? e : new Error(String(e));
      if (isFatal(err)) {
        t.failed(err);
        return;
      }
      log.warn(`${t.name}: reconnect attempt ${attempt} failed (${err.message}); retrying in ${delay} ms`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, BACKOFF_MAX_MS);
    }
  }
}
