/**
 * MemoryDevice.peek: a view of stored bytes without a copy, only where one allocated chunk
 * holds the whole range; everything else (unallocated, spanning chunks) says undefined so the
 * caller reads instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemoryDevice } from '../../src/block/memory-device.js';

const MiB = 1 << 20;

test('peek lends a view of one allocated chunk and nothing else', async () => {
  const dev = new MemoryDevice(4 * MiB);
  const data = randomBytes(MiB);
  await dev.write(MiB, data);
  const view = dev.peek(MiB + 4096, 8192);
  assert.ok(view, 'a range inside a written chunk is lent');
  assert.ok(view.equals(data.subarray(4096, 4096 + 8192)));
  // A view, not a copy: a later write shows through it.
  await dev.write(MiB + 4096, Buffer.alloc(8192, 7));
  assert.ok(view.equals(Buffer.alloc(8192, 7)));
  assert.equal(dev.peek(0, 4096), undefined, 'never written: reads as zeroes, no view');
  assert.equal(dev.peek(2 * MiB - 4096, 8192), undefined, 'spans two chunks');
  assert.throws(() => dev.peek(4 * MiB - 4096, 8192), /past the end/);
  await dev.close();
  assert.throws(() => dev.peek(MiB, 4096), /closed/);
});
