/**
 * A larger send buffer for the unix stream sockets that carry NBD traffic. On a unix socket
 * the sender's buffer is the only queue between the two ends, and the kernel's default (about
 * 208 KiB) is smaller than one 1 MiB read reply or write request, which then crosses it in
 * several fill-and-drain rounds, each waking both processes (figures: docs/performance.md, NBD
 * front end). TCP sockets are left alone: the kernel sizes their buffers itself, and a fixed size
 * would switch that off.
 *
 * Best effort: without the native addon, or as a user without CAP_NET_ADMIN on a kernel whose
 * net.core.wmem_max is lower, the socket keeps what it gets, which only costs speed.
 */
import type { Socket } from 'node:net';
import { loadNative } from './native-addon.js';

/** The send buffer asked for, as the kernel reports it (it doubles the value it is given). */
export const UNIX_SEND_BUFFER_BYTES = 1024 * 1024;

/** Asks for UNIX_SEND_BUFFER_BYTES on descriptor `fd`; what the kernel grants is not checked. */
export function enlargeSendBuffer(fd: number): void {
  loadNative()?.setSendBuffer?.(fd, UNIX_SEND_BUFFER_BYTES / 2);
}

/** enlargeSendBuffer on the descriptor under `socket`; nothing when the platform exposes none. */
export function enlargeSocketSendBuffer(socket: Socket): void {
  const fd = socketFd(socket);
  if (fd !== undefined) enlargeSendBuffer(fd);
}

/** The descriptor under a net.Socket, where the platform exposes one. */
export function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
