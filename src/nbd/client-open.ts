/**
 * Opening one NBD connection for the client (transport stream + handshake), and which
 * failures the reconnect loop must not retry: a refused host key, failed authentication, a
 * missing export, or an error marked fatal (export size changed, replay rejected).
 * Spec: ../shared/reference/nbd-protocol.md §2, §5.
 */
import { NbdcryptError, isNbdcryptError } from '../errors.js';
import type { Transport } from '../transport/transport.js';
import { NbdConnection } from './client-connection.js';
import { clientHandshake, type ExportInfo } from './client-handshake.js';
import { defaultRequestIo, type RequestIo } from './request-io.js';

/** A server that accepts but never finishes the handshake (stopped, wedged) must not stall a reconnect forever. */
export const HANDSHAKE_TIMEOUT_MS = 30_000;

export async function openConnection(transport: Transport, exportName: string, name: string, io: RequestIo = defaultRequestIo, timeoutMs = HANDSHAKE_TIMEOUT_MS): Promise<{ conn: NbdConnection; info: ExportInfo }> {
  const stream = await transport.open();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new NbdcryptError('ECONNECT', `${name}: the NBD server did not complete the handshake within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    const info = await Promise.race([clientHandshake(stream, exportName, name), timeout]);
    return { conn: new NbdConnection(stream, info.leftover, io), info };
  } catch (e) {
    stream.destroy();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

export function isFatal(e: Error): boolean {
  if ((e as { fatal?: boolean }).fatal) return true;
  return isNbdcryptError(e) && (e.code === 'EHOSTKEY' || e.code === 'EAUTH' || e.code === 'ENOEXPORT');
}
