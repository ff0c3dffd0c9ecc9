/**
 * Coalesces the SSH packets ssh2 writes in one event-loop turn into one socket write. ssh2
 * writes every packet (each CHANNEL_DATA of every channel, each WINDOW_ADJUST) with its own
 * `socket.write`, and with Nagle off (as NBD needs) each is its own syscall and wakes sshd
 * once per packet. Corking the socket on the first write of a turn and uncorking at the end
 * of that turn sends them in one writev, with no added latency. Relies on ssh2's internal
 * `_sock` (set synchronously by `Client.connect`); without it nothing changes.
 * See docs/formats.md (SSH).
 */
import type { Socket } from 'node:net';

export function corkPerTurn(client: unknown): boolean {
  const sock = (client as { _sock?: Socket })._sock;
  if (!sock || typeof sock.cork !== 'function' || typeof sock.write !== 'function') return false;
  const write = sock.write;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    sock.uncork();
  };
  sock.write = function (this: Socket, ...args: unknown[]): boolean {
    if (!corked && !sock.destroyed) {
      corked = true;
      sock.cork();
      process.nextTick(uncork);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as Socket['write'];
  return true;
}
