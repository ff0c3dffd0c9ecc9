/**
 * Every use nbdcrypt makes of ssh2 beyond its public API, in one place. Three speed-ups need
 * private fields:
 *
 * - Client `_sock` (the net.Socket, set synchronously by `Client.connect`):
 *   - cork per turn: ssh2 writes every SSH packet (each CHANNEL_DATA of every channel, each
 *     WINDOW_ADJUST) with its own `socket.write`; with Nagle off (as NBD needs) each is its own
 *     syscall and wakes sshd once per packet. Corking on the first write of an event-loop turn
 *     and uncorking at its end sends them in one writev, with no added latency.
 *   - transient-bytes reporting: every socket read is a new Buffer, and so is every packet
 *     ssh2 writes that is not from the packet pool; both are counted (the socket's read counter,
 *     the pool's fresh bytes) on each read (under load something always comes back, so written
 *     bytes are reported within a round trip) and reported as short-lived bytes
 *     (../transient-buffers.ts).
 *   - pooled packets: a packet from ssh-packet-pool.ts goes back to the pool from the callback
 *     of the socket write that sent it.
 * - Channel `incoming.window`, `outgoing.id`, `outgoing.state` and the client's
 *   `_protocol.channelWindowAdjust`: the larger receive window of ssh-window.ts.
 * - The AES-GCM cipher's `allocPacket` (class of `_protocol._cipher`), which ssh2 calls for
 *   every packet it sends: its own asks the CSPRNG for the 4-19 bytes of padding with one
 *   randomFillSync call per packet, about 5 % of serve's CPU writing over ssh. Ours takes the
 *   padding from a 64 KiB block of the same CSPRNG, each byte used once, refilled when spent,
 *   and the memory of full-size packets from ssh-packet-pool.ts, reused once written.
 *   The packet layout is unchanged (RFC 5647: length, padding length, payload, padding to 16,
 *   tag). (Carving packets from fresh 1 MiB slabs instead of a Buffer each was slower: fresh
 *   pages to fault in for every slab; the pool reuses its slabs.)
 *
 * Checked against ssh2 1.17.0; package.json allows only ~1.17.0 (>=1.17.0 <1.18.0), and a
 * newer ssh2 should be checked here before the range is widened. Each use checks the fields
 * and their types first; when one is missing or of another shape, the transport says so in
 * ONE warning line and runs unpatched: correct, only slower. See docs/formats.md (SSH).
 */
import { randomFillSync } from 'node:crypto';
import type { Socket } from 'node:net';
import { log } from '../log.js';
import { ignoreTransientBytes, type NoteTransientBytes } from '../transient-buffers.js';
import { isPooledPacket, releasePacket, takePacket, unpooledPacketBytes } from './ssh-packet-pool.js';

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
    // ssh2 writes each packet once, without a callback: a pooled one goes back once written.
    const packet = args[0];
    if (args.length === 1 && isPooledPacket(packet)) return (write as (b: Buffer, cb: () => void) => boolean).call(this, packet, () => releasePacket(packet));
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as Socket['write'];
}

/** Reports the socket's reads and the fresh packet memory as short-lived Buffer bytes on each read (see the header). */
function reportSocketBuffers(sock: Socket, note: NoteTransientBytes): void {
  const moved = (): number => sock.bytesRead + unpooledPacketBytes();
  let reported = moved();
  sock.on('data', () => {
    const now = moved();
    note(now - reported);
    reported = now;
  });
}

const RANDOM_BLOCK_BYTES = 1 << 16;
const GCM_TAG_BYTES = 16;
const randomBlock = Buffer.allocUnsafeSlow(RANDOM_BLOCK_BYTES);
let randomUsed = RANDOM_BLOCK_BYTES;

/** Copies `n` unused CSPRNG bytes into `dst` at `at`. */
function randomPadding(dst: Buffer, at: number, n: number): void {
  if (randomUsed + n > RANDOM_BLOCK_BYTES) {
    randomFillSync(randomBlock);
    randomUsed = 0;
  }
  randomBlock.copy(dst, at, randomUsed, randomUsed + n);
  randomUsed += n;
}

/** ssh2's AES-GCM packet layout and allocation, with the padding drawn as above. */
function gcmAllocPacket(payloadLen: number): Buffer {
  let pktLen = 4 + 1 + payloadLen;
  let padLen = 16 - ((pktLen - 4) & 15);
  if (padLen < 4) padLen += 16;
  pktLen += padLen;
  const packet = takePacket(pktLen + GCM_TAG_BYTES);
  packet.writeUInt32BE(pktLen - 4, 0);
  packet[4] = padLen;
  randomPadding(packet, 5 + payloadLen, padLen);
  return packet;
}

const PATCHED = Symbol('nbdcrypt packet allocation');

/**
 * Replaces allocPacket of the session's cipher class when it is ssh2's AES-GCM binding (the
 * class is shared by the session's later ciphers after a rekey). True when patched.
 */
export function patchPacketAllocation(client: unknown): boolean | string {
  const cipher = (client as { _protocol?: { _cipher?: unknown } } | null)?._protocol?._cipher;
  if (typeof cipher !== 'object' || cipher === null) return 'Client._protocol._cipher is missing';
  const proto = Object.getPrototypeOf(cipher) as { constructor?: { name?: string }; allocPacket?: unknown; [PATCHED]?: boolean };
  if (proto[PATCHED]) return true;
  // Other ciphers lay packets out differently; they keep ssh2's own allocation.
  if (proto.constructor?.name !== 'AESGCMCipherBinding') return false;
  if (typeof proto.allocPacket !== 'function') return 'AESGCMCipherBinding.allocPacket is not a function';
  proto.allocPacket = gcmAllocPacket;
  proto[PATCHED] = true;
  return true;
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
    // The session's cipher is the negotiated one by now.
    this.check(patchPacketAllocation(client));
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
      log.warn(`${this.where}: ssh2 internals differ from ssh2 ${SSH2_CHECKED_RANGE} (${found}); running without batched socket writes, memory reporting, the larger channel window and pooled packet padding: correct, but slower`);
    }
    return undefined;
  }
}
