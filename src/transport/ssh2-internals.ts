/**
 * Every use nbdcrypt makes of ssh2 beyond its public API, in one place. Three speed-ups need
 * private fields:
 *
 * - Client `_sock` (the net.Socket, set synchronously by `Client.connect`):
 *   - cork per turn: ssh2 writes every SSH packet (each CHANNEL_DATA of every channel, each
 *     WINDOW_ADJUST) with its own `socket.write`; with Nagle off (as NBD needs) each is its own
 *     syscall and wakes sshd once per packet. Corking on the first write of an event-loop turn
 *     and uncorking at its end sends them in one writev, with no added latency.
 *   - transient-bytes reporting: ssh2 allocates a new Buffer for every packet it writes and
 *     every socket read is a new Buffer; both are counted from the socket's byte counters on
 *     each read (under load something always comes back, so written bytes are reported within
 *     a round trip) and reported as short-lived bytes (../transient-buffers.ts).
 * - Channel `incoming.window`, `outgoing.id`, `outgoing.state` and the client's
 *   `_protocol.channelWindowAdjust`: the larger receive window of ssh-window.ts.
 *
 * Checked against ssh2 1.17.0; package.json allows only ~1.17.0 (>=1.17.0 <1.18.0), and a
 * newer ssh2 should be checked here before the range is widened. Each use checks the fields
 * and their types first; when one is missing or of another shape, the transport says so in
 * ONE warning line and runs unpatched: correct, only slower. See docs/formats.md (SSH).
 */
import type { Socket } from 'node:net';
import { log } from '../log.js';
import { ignoreTransientBytes, type NoteTransientBytes } from '../transient-buffers.js';

/** The ssh2 versions whose internals this module was checked against. */
export const SSH2_CHECKED_RANGE = '~1.17.0';

/** What ssh-window.ts needs of a channel: its receive window and a way to grant more. */
export interface ChannelWindowAccess {
  /** ssh2's own count of the window it granted the server. */
  readonly incoming: { window: number };
  /** Sends SSH_MSG_CHANNEL_WINDOW_ADJUST for `amount` bytes (the caller adds it to incoming.window). */
  adjust(amount: number): void;
  isClosed(): boolean;
}

/** The client's socket, or why it cannot be used. */
export function sessionSocket(client: unknown): Socket | string {
  const sock = (client as { _sock?: unknown } | null)?._sock as Partial<Socket> | undefined;
  if (sock === undefined || sock === null) return 'Client._sock is missing';
  for (const f of ['cork', 'uncork', 'write', 'on'] as const) {
    if (typeof sock[f] !== 'function') return `Client._sock.${f} is not a function`;
  }
  if (typeof sock.bytesRead !== 'number' || typeof sock.bytesWritten !== 'number') return 'Client._sock has no byte counters';
  return sock as Socket;
}

/** The channel's window internals, or why they cannot be used. */
export function channelWindow(ch: unknown): ChannelWindowAccess | string {
  const c = ch as {
    incoming?: { window?: unknown };
    outgoing?: { id?: unknown; state?: unknown };
    _client?: { _protocol?: { channelWindowAdjust?: unknown } };
  };
  if (typeof c.incoming?.window !== 'number') return 'Channel.incoming.window is not a number';
  if (typeof c.outgoing?.id !== 'number') return 'Channel.outgoing.id is not a number';
  const proto = c._client?._protocol;
  const adjust = proto?.channelWindowAdjust;
  if (typeof adjust !== 'function') return 'Channel._client._protocol.channelWindowAdjust is not a function';
  const id = c.outgoing.id;
  const outgoing = c.outgoing;
  return {
    incoming: c.incoming as { window: number },
    adjust: (amount) => (adjust as (id: number, amount: number) => void).call(proto, id, amount),
    isClosed: () => outgoing.state === 'closed',
  };
}

/** Coalesces the socket writes of one event-loop turn into one (see the header). */
function corkPerTurn(sock: Socket): void {
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
}

/** Reports the socket's traffic as short-lived Buffer bytes on each read (see the header). */
function reportSocketBuffers(sock: Socket, note: NoteTransientBytes): void {
  const moved = (): number => sock.bytesRead + sock.bytesWritten;
  let reported = moved();
  sock.on('data', () => {
    const now = moved();
    note(now - reported);
    reported = now;
  });
}

/**
 * The patches for the sessions and channels of one transport. Missing internals are reported
 * once per transport, by the first session or channel that finds them missing.
 */
export class Ssh2Patches {
  private warned = false;

  constructor(
    /** Names the transport in the warning line. */
    private readonly where: string,
    private readonly noteTransientBytes: NoteTransientBytes = ignoreTransientBytes,
  ) {}

  /** Right after `Client.connect`: cork per turn. False (after the one warning) when unpatched. */
  afterConnect(client: unknown): boolean {
    const sock = this.check(sessionSocket(client));
    if (sock) corkPerTurn(sock);
    return sock !== undefined;
  }

  /**
   * On the client's 'ready': report the socket's traffic. ssh2 reads the socket itself by
   * now (it starts once connected), so one more 'data' listener changes nothing.
   */
  onReady(client: unknown): boolean {
    const sock = this.check(sessionSocket(client));
    if (sock) reportSocketBuffers(sock, this.noteTransientBytes);
    return sock !== undefined;
  }

  /** The channel's window internals, or undefined (after the one warning) when unusable. */
  channelWindow(ch: unknown): ChannelWindowAccess | undefined {
    return this.check(channelWindow(ch));
  }

  private check<T>(found: T | string): T | undefined {
    if (typeof found !== 'string') return found;
    if (!this.warned) {
      this.warned = true;
      log.warn(`${this.where}: ssh2 internals differ from ssh2 ${SSH2_CHECKED_RANGE} (${found}); running without batched socket writes, memory reporting and the larger channel window: correct, but slower`);
    }
    return undefined;
  }
}
