/**
 * Opening the client side: one NBD connection (transport stream + handshake), and a
 * session of several when the remote allows CAN_MULTI_CONN, all reaching the same export.
 * Spec: the NBD protocol, fixed-newstyle handshake and CAN_MULTI_CONN.
 */
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';
import type { Transport } from '../transport/transport.js';
import { NbdClientConnection } from './client-connection.js';
import { clientHandshake, type ExportInfo } from './client-handshake.js';
import { NbdClientSession, type NbdSessionOptions } from './client-session.js';
import { TF } from './protocol.js';

/** A server that accepts but never finishes the handshake (stopped, wedged) must not stall a reconnect forever. */
export const HANDSHAKE_TIMEOUT_MS = 30_000;

export async function openConnection(transport: Transport, exportName: string, name: string, timeoutMs = HANDSHAKE_TIMEOUT_MS): Promise<{ conn: NbdClientConnection; info: ExportInfo }> {
  const stream = await transport.open();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new NbdcryptError('ECONNECT', `${name}: the NBD server did not complete the handshake within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    const info = await Promise.race([clientHandshake(stream, exportName, name), timeout]);
    return { conn: new NbdClientConnection(stream, info.leftover), info };
  } catch (e) {
    stream.destroy();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Opens `connections` NBD connections (one unless the remote advertises CAN_MULTI_CONN) and
 * returns them as one session; rejects with ECONNECT/EAUTH/EHOSTKEY/ENOEXPORT/EPROTO.
 * The transport stays open either way: its owner closes it.
 */
export async function openNbdSession(transport: Transport, exportName: string, connections: number, opts: NbdSessionOptions): Promise<NbdClientSession> {
  const name = opts.name;
  const first = await openConnection(transport, exportName, name);
  const conns = [first.conn];
  let want = Math.max(1, Math.floor(connections));
  if (want > 1 && !(first.info.flags & TF.CAN_MULTI_CONN)) {
    log.info(`${name}: the remote does not advertise CAN_MULTI_CONN; using one connection instead of ${want}`);
    want = 1;
  }
  try {
    const rest = await Promise.all(Array.from({ length: want - 1 }, () => openConnection(transport, exportName, name)));
    for (const r of rest) {
      conns.push(r.conn);
      if (r.info.size !== first.info.size) throw new NbdcryptError('EPROTO', `${name}: connections disagree on the export size`);
    }
  } catch (e) {
    conns.forEach((c) => c.destroy());
    throw e;
  }
  // The session installs each connection's close handler (a drop before that is caught there).
  return new NbdClientSession(conns, first.info, opts);
}
