/**
 * Reused memory for the full-size SSH packets the transport sends. ssh2 allocates a new
 * Buffer for every packet, and a channel's data leaves in packets of at most 32 KiB (the
 * maximum packet sshd grants a channel), so writing 1 GiB made 32,768 Buffers of ~32 KiB
 * outside V8's heap, each to fault in, account for and collect. A packet taken here is a
 * view of a slab from a free list; once the socket has written it (its write callback) the
 * slab goes back on the list.
 *
 * Invariants: a slab is on the free list or in exactly one packet, never both; a packet goes
 * back at most once, and only from the write callback of the one socket write that sent it
 * (the socket holds the memory until then). A packet that is never written (ssh2 drops
 * packets for a socket that is no longer writable) is simply collected with its slab.
 */

/** Room for ssh2's largest channel packet: 32 KiB of data, header, padding and the GCM tag. */
export const PACKET_SLAB_BYTES = 32 * 1024 + 128;
/** Free slabs kept (4 MiB); more in flight at once are allocated and left to the collector. */
const MAX_FREE_SLABS = 128;

const free: Buffer[] = [];
const slabs = new WeakSet<ArrayBufferLike>();
let unpooled = 0;

/**
 * A Buffer of `size` bytes for one packet: a pooled view for packets of more than half a
 * slab (channel data at full size), a fresh Buffer for anything else.
 */
export function takePacket(size: number): Buffer {
  if (size > PACKET_SLAB_BYTES || size <= PACKET_SLAB_BYTES / 2) {
    unpooled += size;
    return Buffer.allocUnsafe(size);
  }
  let slab = free.pop();
  if (!slab) {
    slab = Buffer.allocUnsafeSlow(PACKET_SLAB_BYTES);
    slabs.add(slab.buffer);
    unpooled += PACKET_SLAB_BYTES;
  }
  return slab.subarray(0, size);
}

/** Whether `b` is a packet from takePacket's slabs (it must go back through releasePacket). */
export function isPooledPacket(b: unknown): b is Buffer {
  return b instanceof Buffer && slabs.has(b.buffer);
}

/** Called once the socket has written `packet`: its slab may carry the next packet. */
export function releasePacket(packet: Buffer): void {
  if (free.length < MAX_FREE_SLABS) free.push(Buffer.from(packet.buffer, 0, PACKET_SLAB_BYTES));
}

/** Bytes handed out as fresh memory so far (what the heap guard must still hear of). */
export function unpooledPacketBytes(): number {
  return unpooled;
}
