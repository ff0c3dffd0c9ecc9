/**
 * Opening the client side: one NBD connection (transport stream + handshake), and a
 * session of several when the remote allows CAN_MULTI_CONN, all reaching the same export.
 * Spec: docs/formats.md (NBD handshake).
 */
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';
import type { Duplex } from 'node:stream';
import { NbdClientConnection } from './client-connection.js';
import { HANDSHAKE_TIMEOUT_MS, clientHandshake, type RemoteExportInfo } from './client-handshake.js';
import { NbdClientSession, type NbdSessionOptions } from './client-session.js';
import { TF } from './protocol.js';
import { defaultRequestIo, type RequestIo } from '../block/request-io.js';

export { HANDSHAKE_TIMEOUT_MS };

/** Opens one fresh byte stream to the NBD server (what a transport provides). */
export type StreamOpener = () => Promise<Duplex>;

export async function openConnection(openStream: StreamOpener, exportName: string, name: string, timeoutMs = HANDSHAKE_TIMEOUT_MS, io: RequestIo = defaultRequestIo): Promise<{ conn: NbdClientConnection; info: RemoteExportInfo }> {
  const stream = await openStream();
  try {
    const info = await clientHandshake(stream, exportName, name, timeoutMs);
    return { conn: new NbdClientConnection(stream, info.leftover, io), info };
  } catch (e) {
    stream.destroy();
    throw e;
  }
}

/**
 * Opens `connections` NBD connections (one unless the remote advertises CAN_MULTI_CONN) and
 * returns them as one session; rejects with ECONNECT/EAUTH/EHOSTKEY/ENOEXPORT/EPROTO.
 * Whatever the streams share (an SSH session) stays open either way: its owner closes it.
 */
export async function openNbdSession(openStream: StreamOpener, exportName: string, connections: number, opts: NbdSessionOptions): Promise<NbdClientSession> {
  const name = opts.name;
  const first = await openConnection(openStream, exportName, name, HANDSHAKE_TIMEOUT_MS, opts.io);
  const conns = [first.conn];
  let want = Math.max(1, Math.floor(connections));
  if (want > 1 && !(first.info.flags & TF.CAN_MULTI_CONN)) {
    log.info(`${name}: the remote does not advertise CAN_MULTI_CONN; using one connection instead of ${want}`);
    want = 1;
  }
  try {
    const rest = await Promise.all(Array.from({ length: want - 1 }, () => openConnection(openStream, exportName, name, HANDSHAKE_TIMEOUT_MS, opts.io)));
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
