/**
 * Plain TCP transport to an nbd-server (nbd://host:port). Nagle is disabled: NBD request
 * headers are small and latency-bound. Connect failures become ECONNECT within the
 * connect timeout. Spec: docs/formats.md (NBD handshake).
 */
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { NbdcryptError } from '../errors.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type Transport } from './transport.js';

export interface TcpOptions {
  host: string;
  port: number;
  connectTimeoutMs?: number;
}

/** Connects a net.Socket and resolves once connected, or rejects with ECONNECT. */
export function connectSocket(target: { host: string; port: number } | { path: string }, what: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = 'path' in target ? connect({ path: target.path }) : connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new NbdcryptError('ECONNECT', `cannot connect to ${what}: no answer within ${timeoutMs} ms; check the address and that the server runs`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      sock.setNoDelay(true);
      resolve(sock);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      sock.destroy();
      reject(new NbdcryptError('ECONNECT', `cannot connect to ${what}: ${e.code ?? e.message}; check the address and that the server runs`, { cause: e }));
    });
  });
}

export function tcpTransport(opts: TcpOptions): Transport {
  const what = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;
  return {
    description: `tcp ${what}`,
    open: (): Promise<Duplex> => connectSocket({ host: opts.host, port: opts.port }, what, opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    close: async () => {},
  };
}
