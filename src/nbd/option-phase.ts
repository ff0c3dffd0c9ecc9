/**
 * Drives the pure option-phase step function (handshake.ts) over one client socket: hands it
 * one message at a time from the input buffer, writes its replies and says how the phase
 * ended. A client must read each option's reply before sending the next, so more than
 * MAX_QUEUED_REPLY_BYTES of unread replies means it is flooding us: the caller stops reading
 * until they drain, which bounds what the option phase buffers in both directions.
 * Spec: docs/formats.md (NBD handshake).
 */
import type { Socket } from 'node:net';
import { handshakeStep, initialHandshakeState, type ExportInfo, type HandshakeNext, type HandshakeState } from './handshake.js';
import type { InputBuffer } from './input-buffer.js';
import { MAX_OPTION_LENGTH, OPTION_HEADER_SIZE } from './protocol.js';

/** Unread option replies above which the option phase stops reading the client. */
export const MAX_QUEUED_REPLY_BYTES = 64 * 1024;

export type OptionPhaseResult =
  | Exclude<HandshakeNext, { kind: 'continue' }>
  /** The client is not reading its replies: wait for the socket to drain. */
  | { kind: 'backlog' };

export class OptionPhase {
  private state: HandshakeState = initialHandshakeState;

  constructor(
    private readonly socket: Socket,
    private readonly exports: readonly ExportInfo[],
  ) {}

  /** Answers the complete messages in `input`; stops at the first that ends the phase. */
  run(input: InputBuffer): OptionPhaseResult {
    for (;;) {
      if (this.socket.writableLength > MAX_QUEUED_REPLY_BYTES) return { kind: 'backlog' };
      const step = handshakeStep(this.state, input.peek(this.nextMessageBytes(input)), this.exports);
      input.skip(step.consumed);
      this.state = step.state;
      for (const r of step.replies) this.socket.write(r);
      if (step.next.kind !== 'continue') return step.next;
    }
  }

  /** Bytes to hand to handshakeStep: just the next message, so a burst of options costs linear time. */
  private nextMessageBytes(input: InputBuffer): number {
    const avail = input.available;
    if (this.state.stage === 'client-flags' || avail < OPTION_HEADER_SIZE) return Math.min(avail, OPTION_HEADER_SIZE);
    const length = input.peek(OPTION_HEADER_SIZE).readUInt32BE(12);
    return Math.min(avail, OPTION_HEADER_SIZE + Math.min(length, MAX_OPTION_LENGTH));
  }
}
