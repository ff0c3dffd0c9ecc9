import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { SectorCache } from '../../src/block/sector-cache.js';
import type { BlockDevice } from '../../src/block/block-device.js';

/**
 * Wraps a device so every call takes effect after one random delay and is acknowledged after
 * another, as over a network: calls overlap, and the order of acknowledgements differs from
 * the order in which they took effect. A buffer given with a write (owned) is scrambled once
 * written, as EncryptedDevice does when it encrypts in place.
 */
function jittery(dev: BlockDevice): BlockDevice {
  const pause = () => new Promise((r) => setTimeout(r, randomInt(0, 4)));
  const later = async <T>(p: () => Promise<T>): Promise<T> => {
    await pause();
    const result = await p();
    await pause();
    return result;
  };
  return {
    size: dev.size,
    caps: dev.caps,
    blockSize: dev.blockSize,
    read: (o, l) => later(() => dev.read(o, l)),
    write: (o, d, f, owned) =>
      later(async () => {
        await dev.write(o, d, f);
        if (owned) d.fill(0xee);
      }),
    flush: () => dev.flush(),
    trim: (o, l) => later(() => dev.trim(o, l)),
    writeZeroes: (o, l, f) => later(() => dev.writeZeroes(o, l, f)),
    close: () => dev.close(),
  };
}

test('a read served from the cache equals the device below', async () => {
  const mem = new MemoryDevice(1 << 20);
  await mem.write(0, randomBytes(1 << 20));
  const cache = new SectorCache(mem, 4096, 256 * 1024);
  const a = await cache.read(5000, 10000);
  const b = await cache.read(5000, 10000);
  assert.deepEqual(a, await mem.read(5000, 10000));
  assert.deepEqual(b, a);
  assert.ok(cache.stats.hits >= 1, 'second read should hit');
  assert.ok(cache.stats.bytes <= 256 * 1024);
});

test('writes, trims and zeroes keep the cache coherent', async () => {
  const mem = new MemoryDevice(64 * 4096);
  const cache = new SectorCache(mem, 4096, 32 * 4096);
  await cache.read(0, 64 * 4096);
  await cache.write(4096 + 100, Buffer.alloc(50, 7));
  assert.deepEqual(await cache.read(4096, 4096), await mem.read(4096, 4096));
  await cache.write(8192, Buffer.alloc(8192, 9));
  assert.equal((await cache.read(8192, 8192)).every((x) => x === 9), true);
  await cache.writeZeroes(8192, 4096);
  assert.deepEqual(await cache.read(8192, 8192), await mem.read(8192, 8192));
  await cache.trim(12288, 4096);
  assert.deepEqual(await cache.read(12288, 4096), await mem.read(12288, 4096));
});

/**
 * 40 rounds of 200 random reads, writes (some handing their buffer over), zeroes and trims at
 * once through `cache` over `mem`; after each round every block read through the cache must
 * equal the device below.
 */
async function checkCoherence(cache: SectorCache, mem: MemoryDevice): Promise<void> {
  const blocks = mem.size / 4096;
  const deadline = Date.now() + 60_000;
  for (let round = 0; round < 40 && Date.now() < deadline; round++) {
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const off = randomInt(0, blocks * 4096 - 1);
      const len = randomInt(1, Math.min(3 * 4096, blocks * 4096 - off) + 1);
      const kind = randomInt(0, 10);
      if (kind < 5) ops.push(cache.read(off, len));
      else if (kind < 7) ops.push(cache.write(off, randomBytes(len)));
      else if (kind < 8) ops.push(cache.write(off, randomBytes(len), false, true));
      else if (kind < 9) ops.push(cache.writeZeroes(off, len));
      else ops.push(cache.trim(off, len));
    }
    await Promise.all(ops);
    for (let b = 0; b < blocks; b++) {
      const viaCache = await cache.read(b * 4096, 4096);
      assert.deepEqual(viaCache, await mem.read(b * 4096, 4096), `round ${round}: cached block ${b} diverged from the device`);
    }
  }
}

test('after 8,000 concurrent overlapping calls every cached block matches the device', async () => {
  const mem = new MemoryDevice(64 * 4096);
  await checkCoherence(new SectorCache(jittery(mem), 4096, 48 * 4096), mem);
});

test('under writes that never pause, the write stamps stay bounded by the stamp limit', async () => {
  const blocks = 4096;
  const mem = new MemoryDevice(blocks * 4096);
  const cache = new SectorCache(jittery(mem), 4096, 64 * 4096, undefined, 100);
  // Sixteen writers keep calls in flight throughout, so the cache is never idle until the end.
  let next = 0;
  let most = 0;
  const writer = async () => {
    while (next < 3000) {
      const b = (next++ * 2741) % blocks;
      await cache.write(b * 4096, randomBytes(4096));
      most = Math.max(most, cache.stampedBlocks);
    }
  };
  await Promise.all(Array.from({ length: 16 }, writer));
  assert.ok(most <= 100 + 16, `${most} blocks stamped at once, over the limit of 100 (plus one block per writer)`);
  assert.equal(cache.stampedBlocks, 0, 'idle: no stamps kept');
  for (let b = 0; b < blocks; b += 97) assert.deepEqual(await cache.read(b * 4096, 4096), await mem.read(b * 4096, 4096));
});

test('with stamps dropped every few calls, 8,000 concurrent overlapping calls keep the cache coherent', async () => {
  const mem = new MemoryDevice(64 * 4096);
  await checkCoherence(new SectorCache(jittery(mem), 4096, 48 * 4096, undefined, 4), mem);
});
