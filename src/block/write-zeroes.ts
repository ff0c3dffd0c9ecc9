/**
 * WRITE_ZEROES for a layer that has no cheaper way: the range is written with zeroes, in
 * chunks of at most 1 MiB (memory stays bounded whatever the request), each chunk ending on a
 * multiple of `align` except the last (so a layer with sectors read-modify-writes at most the
 * first and the last chunk). The zero buffer is shared and read-only: `write` must treat it
 * as borrowed (BlockDevice.write's default). Durability (FUA) is the caller's: per chunk, or
 * one flush after.
 */
const ZERO_CHUNK = Buffer.alloc(1024 * 1024);

export async function writeZeroChunks(
  write: (offset: number, zeroes: Buffer) => Promise<void>,
  offset: number,
  length: number,
  align = 1,
): Promise<void> {
  const end = offset + length;
  for (let at = offset; at < end; ) {
    let next = Math.min(end, at + ZERO_CHUNK.length);
    if (next < end && align > 1) next = Math.max(next - (next % align), Math.min(end, at + align));
    await write(at, ZERO_CHUNK.subarray(0, next - at));
    at = next;
  }
}
