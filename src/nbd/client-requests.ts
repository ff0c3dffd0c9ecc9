/**
 * Splitting, client side: one request of the session becomes wire requests of at most the
 * remote's maximum payload (NBD_INFO_BLOCK_SIZE maximum, 32 MiB by default), and their
 * replies become one answer. A large READ gets one destination buffer that every part
 * fills in place. Spec: docs/formats.md (NBD handshake, NBD transmission): block sizes.
 */
import type { RequestBuffers } from '../block/buffer-pool.js';
import type { WireRequest } from './client-connection.js';
import { Cmd } from './protocol.js';

/** Called once: an error, or success with a READ's payload (the caller's to keep). */
export type Answer = (err: Error | undefined, payload: Buffer | undefined) => void;

/** Where the parts go: the session, which spreads them over its connections. */
export interface WireSink {
  readonly maxChunk: number;
  /** Where READ destinations come from and read-modify-write buffers go back to. */
  readonly buffers: RequestBuffers;
  send(w: WireRequest): void;
  /** The error an NBD error reply means; undefined when the session died of it (no answer then). */
  replyError(w: WireRequest, error: number): Error | undefined;
}

/** Sends [offset, offset+length) as `type` in parts of at most sink.maxChunk bytes. */
export function sendParts(sink: WireSink, type: number, flags: number, offset: number, length: number, data: Buffer | undefined, answer: Answer): void {
  if (length <= sink.maxChunk) {
    const w: WireRequest = {
      type,
      flags,
      offset,
      length,
      data,
      dest: undefined,
      destOffset: undefined,
      onReply: (error, payload) => {
        if (error === 0) return answer(undefined, payload);
        const e = sink.replyError(w, error);
        if (e) answer(e, undefined);
      },
    };
    sink.send(w);
    return;
  }
  const dest = type === Cmd.READ ? sink.buffers.acquire(length) : undefined;
  let left = Math.ceil(length / sink.maxChunk);
  let failed = false;
  for (let at = 0; at < length; at += sink.maxChunk) {
    const n = Math.min(sink.maxChunk, length - at);
    const w: WireRequest = {
      type,
      flags,
      offset: offset + at,
      length: n,
      data: data && data.subarray(at, at + n),
      dest,
      destOffset: dest ? at : undefined,
      onReply: (error) => {
        if (failed) return;
        if (error !== 0) {
          const e = sink.replyError(w, error);
          failed = true;
          if (e) answer(e, undefined);
          return;
        }
        if (--left === 0) answer(undefined, dest);
      },
    };
    sink.send(w);
  }
}

/** sendParts as a promise (for the read-modify-write path). */
export function partsDone(sink: WireSink, type: number, flags: number, offset: number, length: number, data?: Buffer): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => sendParts(sink, type, flags, offset, length, data, (err, payload) => (err ? reject(err) : resolve(payload))));
}
