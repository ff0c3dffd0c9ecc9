// The one zero-writing loop: bounded chunks, chunk ends on the alignment except the last,
// every byte of the range covered once, the shared zero buffer handed out read-only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeZeroChunks } from '../../src/block/write-zeroes.js';

async function chunksOf(offset: number, length: number, align?: number): Promise<[number, number][]> {
  const out: [number, number][] = [];
  await writeZeroChunks(async (at, zeroes) => {
    assert.ok(zeroes.every((b) => b === 0), 'zeroes');
    out.push([at, zeroes.length]);
  }, offset, length, align);
  return out;
}

test('covers the range once, in chunks of at most 1 MiB, ends aligned but the last', async () => {
  const MiB = 1 << 20;
  for (const [offset, length, align] of [[0, 0, 1], [0, 5, 1], [100, 3 * MiB + 7, 1], [512 + 3, 2 * MiB + 4096, 4096], [4096, MiB, 4096], [7, 10, 4096]] as const) {
    const chunks = await chunksOf(offset, length, align);
    let at = offset;
    for (const [i, [start, n]] of chunks.entries()) {
      assert.equal(start, at, 'contiguous');
      assert.ok(n > 0 && n <= MiB, `chunk size ${n}`);
      if (i < chunks.length - 1) assert.equal((start + n) % align, 0, `chunk end ${start + n} aligned to ${align}`);
      at += n;
    }
    assert.equal(at, offset + length, `covers ${offset}+${length}`);
  }
});
