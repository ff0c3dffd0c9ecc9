/**
 * Opening one NBD connection for the client (transport stream + handshake), and which
 * failures the reconnect loop must not retry: a refused host key, failed authentication, a
 * missing export, or an error marked fatal (export size changed, replay rejected).
 * Spec: docs/formats.md (NBD handshake).
 */
import { isNbdcryptError } from '../errors.js';
import type { Transport } from '../transport/transport.js';
import { NbdConnection } from './client-connection.js';
import { HANDSHAKE_TIMEOUT_MS, clientHandshake, type ExportInfo } from './client-handshake.js';
import { defaultRequestIo, type RequestIo } from './request-io.js';

export { HANDSHAKE_TIMEOUT_MS };

export async function openConnection(transport: Transport, exportName: string, name: string, io: RequestIo = defaultRequestIo, timeoutMs = HANDSHAKE_TIMEOUT_MS): Promise<{ conn: NbdConnection; info: ExportInfo }> {
  const stream = await transport.open();
  try {
    const info = await clientHandshake(stream, exportName, name, timeoutMs);
    return { conn: new NbdConnection(stream, info.leftover, io), info };
  } catch (e) {
    stream.destroy();
    throw e;
  }
}

export function isFatal(e: Error): boolean {
  if ((e as { fatal?: boolean }).fatal) return true;
  return isNbdcryptError(e) && (e.code === 'EHOSTKEY' || e.code === 'EAUTH' || e.code === 'ENOEXPORT');
}
