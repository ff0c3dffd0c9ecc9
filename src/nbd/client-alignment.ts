/**
 * Alignment, client side: a remote that advertises a minimum block size (NBD_INFO_BLOCK_SIZE)
 * must only see requests aligned to it. An unaligned READ is widened to whole blocks and
 * the wanted bytes sliced out; an unaligned WRITE is read-modify-written. Concurrent
 * unaligned writes into the same remote block are not serialised here: a caller that needs
 * their order waits for one before sending the other (as NBD clients must anyway).
 * Spec: docs/formats.md (NBD handshake), its block sizes.
 */
import { partsDone, type WireSink } from './client-requests.js';
import { CF, Cmd } from './protocol.js';

export interface Range {
  offset: number;
  length: number;
}

/** [offset, offset+length) widened to multiples of `minBlock`, clipped to `size`. */
export function alignRange(minBlock: number, size: number, offset: number, length: number): Range {
  if (minBlock <= 1) return { offset, length };
  const start = offset - (offset % minBlock);
  const end = Math.min(size, Math.ceil((offset + length) / minBlock) * minBlock);
  return { offset: start, length: end - start };
}

/** Reads the widened range `a` and returns the `length` bytes at `offset` inside it. */
export async function readWidened(sink: WireSink, a: Range, offset: number, length: number): Promise<Buffer> {
  const whole = (await partsDone(sink, Cmd.READ, 0, a.offset, a.length))!;
  return whole.subarray(offset - a.offset, offset - a.offset + length);
}

/** Writes `data` at `offset` by reading the widened range `a`, patching it and writing it back. */
export async function readModifyWrite(sink: WireSink, a: Range, offset: number, data: Buffer, fua: boolean): Promise<void> {
  const whole = (await partsDone(sink, Cmd.READ, 0, a.offset, a.length))!;
  data.copy(whole, offset - a.offset);
  await partsDone(sink, Cmd.WRITE, fua ? CF.FUA : 0, a.offset, a.length, whole);
  sink.buffers.release(whole);
}
