import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool } from '../../src/block/buffer-pool.js';

test('a released buffer is lent again for the same size class, never twice at once', () => {
  const pool = new BufferPool(1 << 20);
  const a = pool.acquire(5000);
  assert.equal(a.length, 5000);
  const b = pool.acquire(5000);
  assert.notEqual(a.buffer, b.buffer, 'two buffers lent at once share memory');
  pool.release(a);
  pool.release(a); // a second release must not put it on the free list twice
  assert.equal(pool.idleBytes, 8192);
  const c = pool.acquire(8000);
  const d = pool.acquire(8000);
  assert.equal(c.buffer, a.buffer, 'the free buffer was not reused');
  assert.notEqual(d.buffer, a.buffer, 'one free buffer was lent twice');
});

test('release ignores buffers the pool did not lend, including views of Node slabs', () => {
  const pool = new BufferPool(1 << 20);
  pool.release(Buffer.alloc(65536));
  pool.release(Buffer.from('small, from the shared slab'));
  pool.release(undefined);
  assert.equal(pool.idleBytes, 0);
});

test('a view of a lent buffer gives the whole buffer back', () => {
  const pool = new BufferPool(1 << 20);
  const a = pool.acquire(65536);
  pool.release(a.subarray(100, 200));
  assert.equal(pool.idleBytes, 65536);
});

test('free buffers beyond the cap are left to the GC; tiny and huge sizes are not pooled', () => {
  const pool = new BufferPool(64 * 1024);
  const bufs = [pool.acquire(65536), pool.acquire(65536)];
  for (const b of bufs) pool.release(b);
  assert.equal(pool.idleBytes, 65536);
  const tiny = pool.acquire(100);
  pool.release(tiny);
  assert.equal(pool.idleBytes, 65536);
  assert.equal(pool.acquire(0).length, 0);
});

test('copyOf copies into a pooled buffer', () => {
  const pool = new BufferPool(1 << 20);
  const src = Buffer.alloc(10000, 7);
  const c = pool.copyOf(src);
  assert.deepEqual(c, src);
  assert.notEqual(c.buffer, src.buffer);
});
