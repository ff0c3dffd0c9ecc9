/**
 * The packet pool (src/transport/ssh-packet-pool.ts): full-size packets are views of slabs
 * that come back once released, everything else is fresh memory, and the fresh bytes are
 * counted for the heap guard.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { PACKET_SLAB_BYTES, isPooledPacket, releasePacket, takePacket, unpooledPacketBytes } from '../../src/transport/ssh-packet-pool.js';

it('a released full-size packet lends its slab to the next one; a held one does not', () => {
  const a = takePacket(32 * 1024 + 48);
  assert.equal(a.length, 32 * 1024 + 48);
  assert.ok(isPooledPacket(a));
  const b = takePacket(PACKET_SLAB_BYTES);
  assert.notEqual(b.buffer, a.buffer, 'a packet still held keeps its slab');
  releasePacket(a);
  const before = unpooledPacketBytes();
  const c = takePacket(20_000);
  assert.equal(c.buffer, a.buffer, 'the released slab carries the next packet');
  assert.equal(unpooledPacketBytes(), before, 'reusing a slab is not fresh memory');
  releasePacket(b);
  releasePacket(c);
});

it('small and oversized packets are fresh Buffers, counted as such and never pooled', () => {
  for (const size of [16, 4096, PACKET_SLAB_BYTES / 2, PACKET_SLAB_BYTES + 1]) {
    const before = unpooledPacketBytes();
    const p = takePacket(size);
    assert.equal(p.length, size);
    assert.equal(isPooledPacket(p), false, `${size} bytes`);
    assert.equal(unpooledPacketBytes() - before, size);
  }
  assert.equal(isPooledPacket(Buffer.alloc(PACKET_SLAB_BYTES)), false, 'a Buffer of the same size made elsewhere');
  assert.equal(isPooledPacket('x'), false);
});
