/**
 * Unix-domain socket transport to a local nbd-server (nbd+unix:///export?socket=PATH).
 * Spec: docs/formats.md (NBD URIs).
 */
import type { Duplex } from 'node:stream';
import { connectSocket } from './tcp.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type Transport } from './transport.js';

export interface UnixOptions {
  path: string;
  connectTimeoutMs?: number;
}

export function unixTransport(opts: UnixOptions): Transport {
  return {
    description: `unix ${opts.path}`,
    open: (): Promise<Duplex> => connectSocket({ path: opts.path }, `unix socket ${opts.path}`, opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    close: async () => {},
  };
}
