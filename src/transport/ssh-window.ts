/**
 * Enlarges the receive window of an ssh2 channel. ssh2 fixes every channel's window at
 * 2 MiB and tops it up only when 1 MiB is left (not configurable), so one
 * channel carries at most ~2 MiB per round trip through sshd and the nbd-server behind it;
 * on loopback that capped NBD reads at about a third of a raw channel. We grant the server
 * more window with SSH_MSG_CHANNEL_WINDOW_ADJUST (RFC 4254 §5.2) and keep it topped up as
 * data is consumed, honouring the stream's backpressure exactly like ssh2 does. The ssh2
 * internals this needs come from ssh2-internals.ts, which leaves the channel as it is when a
 * future ssh2 lacks them. See docs/formats.md (SSH).
 */
import type { ClientChannel } from 'ssh2';
import type { ChannelWindowAccess } from './ssh2-internals.js';

/** Default receive window per channel (bytes). */
export const CHANNEL_WINDOW = 8 * 1024 * 1024;
/** ssh2's own fixed window. */
export const SSH2_WINDOW = 2 * 1024 * 1024;

/**
 * Window per channel when `channels` share one session: one channel gains from a larger
 * window, but several large windows at once are slower than ssh2's own, so the session-wide
 * budget is fixed (docs/performance.md, SSH). Returns 0 when ssh2's default is enough.
 */
export function windowForChannels(channels: number): number {
  const w = Math.floor(CHANNEL_WINDOW / Math.max(1, channels));
  return w > SSH2_WINDOW ? w : 0;
}

/** Receive window of an SFTP channel: pipelined reads of up to 256 KiB each fill ssh2's 2 MiB in eight. */
export const SFTP_WINDOW = 16 * 1024 * 1024;

/** `access`: the channel's window internals (ssh2-internals.ts channelWindow). */
export function enlargeReceiveWindow(ch: Pick<ClientChannel, 'push'>, access: ChannelWindowAccess, window = CHANNEL_WINDOW): void {
  const incoming = access.incoming;
  const adjust = (): void => {
    const amount = window - incoming.window;
    if (amount <= 0 || access.isClosed()) return;
    incoming.window += amount;
    access.adjust(amount);
  };
  adjust();
  // ssh2 calls push() for every CHANNEL_DATA packet; top the window up once half is used,
  // unless the reader is applying backpressure (push returned false): then ssh2 resumes on _read.
  const push = ch.push.bind(ch);
  ch.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    const ok = push(chunk, encoding);
    if (ok !== false && chunk !== null && incoming.window < window / 2) adjust();
    return ok;
  };
}
