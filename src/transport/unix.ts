/**
 * Unix-domain socket transport to a local nbd-server (nbd+unix:///export?socket=PATH).
 * Each connection asks for a 1 MiB send buffer (unix-send-buffer.ts): on a unix socket the
 * sender's buffer is the only queue between the ends, and a 1 MiB NBD write would otherwise
 * cross the default one in several fill-and-drain rounds (docs/performance.md, NBD front end).
 * Spec: docs/formats.md (NBD URIs).
 */
import type { Duplex } from 'node:stream';
import { enlargeSocketSendBuffer } from '../unix-send-buffer.js';
import { connectSocket } from './tcp.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type Transport } from './transport.js';

export interface UnixOptions {
  path: string;
  connectTimeoutMs?: number;
}

export function unixTransport(opts: UnixOptions): Transport {
  return {
    description: `unix ${opts.path}`,
    open: async (): Promise<Duplex> => {
      const sock = await connectSocket({ path: opts.path }, `unix socket ${opts.path}`, opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
      enlargeSocketSendBuffer(sock);
      return sock;
    },
    close: async () => {},
  };
}
