/**
 * Reports the SSH socket's traffic as short-lived Buffers (../transient-buffers.ts): ssh2
 * allocates a new Buffer for every packet it writes, and every socket read is a new Buffer.
 * Both are counted from the socket's own byte counters, on each read: under load something
 * always comes back (replies, window adjustments), so written bytes are reported within a
 * round trip, and ssh2's write path (already wrapped by ssh-cork.ts) is left alone. Relies on
 * ssh2's internal `_sock` (set synchronously by `Client.connect`), like ssh-cork.ts; without it
 * nothing is reported.
 */
import type { Socket } from 'node:net';
import { noteTransientBytes } from '../transient-buffers.js';

export function reportSocketBuffers(client: unknown): boolean {
  const sock = (client as { _sock?: Socket })._sock;
  if (!sock || typeof sock.on !== 'function') return false;
  const moved = (): number => sock.bytesRead + sock.bytesWritten;
  let reported = moved();
  sock.on('data', () => {
    const now = moved();
    noteTransientBytes(now - reported);
    reported = now;
  });
  return true;
}
