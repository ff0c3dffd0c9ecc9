/**
 * Server-side byte transcripts for the client handshake tests, and a simulator that feeds a
 * transcript to the pure step function in chunks the way the stream driver does, recording
 * every step so the tests can check progress, buffering and the decision. Not a test file.
 */
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import * as codec from '../../src/nbd/codec.js';
import {
  MAX_HANDSHAKE_MESSAGE,
  clientHandshakeEnded,
  clientHandshakeStep,
  initialClientHandshakeState,
  type HandshakeTarget,
  type NegotiatedExport,
} from '../../src/nbd/client-handshake-step.js';
import type { NbdcryptError } from '../../src/errors.js';
import { FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES, Info, Opt, Rep } from '../../src/nbd/protocol.js';

export const target: HandshakeTarget = { exportName: 'disk', where: 'nbd://test/disk' };

export const greeting = (flags = FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES): Buffer => codec.encodeGreeting(flags);
export const goReply = (type: number, data?: Buffer): Buffer => codec.encodeOptionReply(Opt.GO, type, data);

/** NBD_INFO_EXPORT with a u64 size, so tests can send sizes no JS number holds. */
export function infoExport(size: bigint, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(Info.EXPORT, 0);
  b.writeBigUInt64BE(size, 2);
  b.writeUInt16BE(flags, 10);
  return goReply(Rep.INFO, b);
}

export const infoBlockSize = (minimum: number, preferred: number, maximum: number): Buffer =>
  goReply(Rep.INFO, codec.encodeInfoBlockSize({ minimum, preferred, maximum }));

export function exportNameReply(size: bigint, flags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  b.writeBigUInt64BE(size, 0);
  b.writeUInt16BE(flags, 8);
  return b;
}

export interface Outcome {
  kind: 'done' | 'fail' | 'ended';
  export?: NegotiatedExport;
  error?: NbdcryptError;
  /** Bytes after the handshake (done only). */
  leftover: Buffer;
  sent: Buffer[];
  /** Step calls, need-more answers included. */
  steps: number;
  /** Largest `need-more` byte count: what the driver may have to buffer. */
  maxNeeded: number;
}

/**
 * Feeds `transcript` to the step function, `chunk()` bytes at a time (everything at once by
 * default), stepping only once the bytes asked for are there, as client-handshake.ts does.
 * Asserts the step contract on the way: consumed within the input, progress on `continue`,
 * `need-more` asking for more than it has and never more than MAX_HANDSHAKE_MESSAGE.
 */
export function simulate(transcript: Buffer, chunk: () => number = () => transcript.length, t: HandshakeTarget = target): Outcome {
  let state = initialClientHandshakeState;
  let input: Buffer = Buffer.alloc(0);
  let pos = 0;
  const sent: Buffer[] = [];
  let steps = 0;
  let maxNeeded = 0;
  for (;;) {
    const s = clientHandshakeStep(state, input, t);
    steps++;
    assert.ok(s.consumed >= 0 && s.consumed <= input.length, `consumed ${s.consumed} of ${input.length}`);
    state = s.state;
    input = input.subarray(s.consumed);
    sent.push(...s.send);
    const next = s.next;
    if (next.kind === 'continue') {
      assert.ok(s.consumed > 0, 'a continue step consumes bytes');
      continue;
    }
    if (next.kind === 'fail') return { kind: 'fail', error: next.error, leftover: Buffer.alloc(0), sent, steps, maxNeeded };
    if (next.kind === 'done') {
      return { kind: 'done', export: next.export, leftover: Buffer.concat([input, transcript.subarray(pos)]), sent, steps, maxNeeded };
    }
    assert.equal(s.consumed, 0, 'need-more consumes nothing');
    assert.ok(next.bytes > input.length, `need-more asks for ${next.bytes} with ${input.length} present`);
    assert.ok(next.bytes <= MAX_HANDSHAKE_MESSAGE, `need-more asks for ${next.bytes} bytes`);
    maxNeeded = Math.max(maxNeeded, next.bytes);
    if (pos >= transcript.length) return { kind: 'ended', error: clientHandshakeEnded(state, t), leftover: Buffer.alloc(0), sent, steps, maxNeeded };
    const parts = [input];
    let have = input.length;
    while (have < next.bytes && pos < transcript.length) {
      const n = Math.max(1, chunk());
      parts.push(transcript.subarray(pos, pos + n));
      have += Math.min(n, transcript.length - pos);
      pos += n;
    }
    input = Buffer.concat(parts);
  }
}

/** A stream standing in for the server: the test pushes its bytes and reads what the client wrote. */
export function fakeServer(): { stream: Duplex; sent: Buffer[] } {
  const sent: Buffer[] = [];
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      sent.push(chunk);
      cb();
    },
  });
  return { stream, sent };
}
