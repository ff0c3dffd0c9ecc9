/**
 * One client connection of the NBD server, from the greeting to the close: the option phase
 * (option-phase.ts) until the client picks an export, then the transmission loop
 * (transmission.ts). Owns the socket's life cycle: a graceful shutdown answers the requests
 * in flight before closing, an abort closes at once. A client that has not finished the option
 * phase within `handshakeTimeoutMs` of connecting is dropped, however busy it keeps us, so
 * half-open connections cannot pile up.
 * Spec: docs/formats.md (NBD handshake, NBD transmission).
 */
import type { Socket } from 'node:net';
import { log } from '../log.js';
import { encodeGreeting } from './codec.js';
import type { InFlightBudget } from './in-flight-budget.js';
import { InputBuffer } from './input-buffer.js';
import { OptionPhase } from './option-phase.js';
import { FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES } from './protocol.js';
import { defaultRequestIo, type RequestIo } from '../block/request-io.js';
import { defaultLimits, type ConnectionLimits, type ServedExport, type ServerStats } from './served-export.js';
import { Transmission } from './transmission.js';

export { defaultLimits, type ConnectionLimits, type ServedExport, type ServerStats } from './served-export.js';

export class ServerConnection {
  readonly closed: Promise<void>;
  private readonly input: InputBuffer;
  private readonly options: OptionPhase;
  private transmission: Transmission | undefined;
  /** Set once we stop accepting requests (DISC, fatal error, server shutdown). */
  private draining = false;
  private hsTimer: NodeJS.Timeout | undefined;
  /** The option phase waits for the client to read its replies. */
  private backlogged = false;

  constructor(
    private readonly socket: Socket,
    private readonly exports: readonly ServedExport[],
    private readonly stats: ServerStats,
    private readonly limits: ConnectionLimits = defaultLimits,
    /** Shared by every connection of the server, if it bounds its total. */
    private readonly budget?: InFlightBudget,
    /** Request buffers and where socket reads are reported (request-io.ts). */
    private readonly io: RequestIo = defaultRequestIo,
    /**
     * Serve this export from the first byte, with no greeting and no option phase: the peer
     * (the kernel, given a socketpair over netlink) was told its size and flags out of band.
     */
    adopted?: ServedExport,
  ) {
    this.input = new InputBuffer(io.buffers);
    this.options = new OptionPhase(socket, exports.map((e) => e.info));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => log.debug(`nbd connection: ${e.message}`));
    socket.on('end', () => this.shutdown('client closed the connection'));
    socket.once('close', () => {
      if (this.hsTimer) clearTimeout(this.hsTimer);
      this.transmission?.closed();
      this.input.clear();
    });
    if (adopted) {
      this.transmission = new Transmission(socket, this.input, adopted, stats, limits, this, budget, io.buffers);
      return;
    }
    this.hsTimer = setTimeout(() => {
      if (!this.transmission) this.abort('handshake timed out');
    }, limits.handshakeTimeoutMs);
    this.hsTimer.unref();
    socket.write(encodeGreeting(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES));
  }

  /** Stops reading requests, lets those in flight finish, then closes. */
  shutdown(reason: string): void {
    if (this.draining) return;
    this.draining = true;
    log.debug(`nbd connection closing: ${reason}`);
    this.socket.pause();
    this.input.clear();
    if (!this.transmission) {
      this.abort(reason);
      return;
    }
    this.transmission.stop(() => {
      // Queued replies go first (end() waits for them), then both directions close.
      if (!this.socket.destroyed) this.socket.end(() => this.socket.destroy());
    });
  }

  /** Closes at once, dropping whatever is in flight. */
  abort(reason: string): void {
    this.draining = true;
    log.debug(`nbd connection aborted: ${reason}`);
    this.input.clear();
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.io.noteTransientBytes(chunk.length);
    if (this.draining) return;
    this.input.push(chunk);
    if (this.transmission) this.transmission.pump();
    else if (!this.backlogged) this.negotiate();
  }

  /** Bytes held for this client: unparsed input and replies not yet taken by the kernel. */
  get bufferedBytes(): number {
    return this.input.available + this.socket.writableLength;
  }

  private negotiate(): void {
    const result = this.options.run(this.input);
    switch (result.kind) {
      case 'need-more':
        return;
      case 'backlog':
        this.backlogged = true;
        this.socket.pause();
        this.socket.once('drain', () => {
          this.backlogged = false;
          if (this.draining) return;
          this.socket.resume();
          this.negotiate();
        });
        return;
      case 'close':
        this.draining = true;
        log.debug(`nbd handshake: ${result.reason}`);
        this.input.clear();
        this.socket.end(() => this.socket.destroy());
        return;
      case 'transmit': {
        const served = this.exports.find((e) => e.info.name === result.exportName)!;
        if (this.hsTimer) clearTimeout(this.hsTimer);
        this.transmission = new Transmission(this.socket, this.input, served, this.stats, this.limits, this, this.budget, this.io.buffers);
        this.transmission.pump();
        return;
      }
    }
  }
}
