/**
 * Reports the SSH socket's traffic as short-lived Buffers (../transient-buffers.ts): ssh2
 * allocates a new Buffer for every packet it writes, and every socket read is a new Buffer.
 * Relies on ssh2's internal `_sock` (set synchronously by `Client.connect`), like ssh-cork.ts;
 * without it nothing is reported.
 */
import type { Socket } from 'node:net';
import { noteTransientBytes } from '../transient-buffers.js';

export function reportSocketBuffers(client: unknown): boolean {
  const sock = (client as { _sock?: Socket })._sock;
  if (!sock || typeof sock.write !== 'function' || typeof sock.on !== 'function') return false;
  sock.on('data', (b: Buffer) => noteTransientBytes(b.length));
  const write = sock.write;
  sock.write = function (this: Socket, ...args: unknown[]): boolean {
    const chunk = args[0];
    if (chunk instanceof Uint8Array) noteTransientBytes(chunk.length);
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as Socket['write'];
  return true;
}
