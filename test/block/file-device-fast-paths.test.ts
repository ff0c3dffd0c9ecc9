/**
 * FileDevice's native shortcuts: reads served from the page cache on the event loop
 * (preadv2 RWF_NOWAIT), small writes gathered into one thread-pool job (pwriteBatch), and the
 * kernel's readahead turned off (POSIX_FADV_RANDOM). The oracle is the file itself, read back
 * with node:fs, and the same workload with the shortcuts turned off; for readahead, what
 * `fincore` (util-linux) says is in the page cache.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { FileDevice, type FileFastPaths } from '../../src/block/file-device.js';
import { loadNative, nativeLoadError } from '../../src/native-addon.js';
import { requireTool, run, scratchDir } from '../../peers/tools.js';

function addon() {
  const a = loadNative();
  assert.ok(a, `the native addon must be built for these tests: ${nativeLoadError()}`);
  return a;
}

test('preadNoWait returns cached bytes; pwriteBatch writes in order and reports each result', async () => {
  const a = addon();
  const dir = scratchDir('nbdcrypt-fastpath-');
  try {
    const path = join(dir.path, 'f');
    const content = randomBytes(65536);
    writeFileSync(path, content); // just written, so in the page cache
    const fd = openSync(path, 'r+');
    try {
      const buf = Buffer.alloc(4096);
      assert.equal(a.preadNoWait(fd, buf, 8192), 4096);
      assert.deepEqual(buf, content.subarray(8192, 12288));
      assert.equal(a.preadNoWait(fd, buf, 65536), 0, 'end of file reads 0 bytes');
      const results = await a.pwriteBatch(fd, [Buffer.alloc(4096, 1), Buffer.alloc(100, 2), Buffer.alloc(10, 3)], [0, 8192, 8195]);
      assert.deepEqual(results, [4096, 100, 10]);
      const after = readFileSync(path);
      assert.equal(after[0], 1);
      assert.deepEqual([...after.subarray(8192, 8196)], [2, 2, 2, 3], 'the later write of an overlapping pair wins');
    } finally {
      closeSync(fd);
    }
    assert.equal(a.preadNoWait(1 << 20, Buffer.alloc(1), 0), -constants.errno.EBADF);
    assert.deepEqual(await a.pwriteBatch(1 << 20, [Buffer.alloc(1)], [0]), [-constants.errno.EBADF]);
    assert.throws(() => a.pwriteBatch(0, [Buffer.alloc(1)], []), /same non-zero length/);
  } finally {
    dir.remove();
  }
});

/** Runs `rounds` of concurrent random small and large writes (disjoint within a round) and reads. */
async function workload(path: string, seed: Buffer, fastPaths: FileFastPaths): Promise<void> {
  const dev = await FileDevice.open(path, { fastPaths });
  const model = Buffer.from(seed);
  try {
    for (let round = 0; round < 20; round++) {
      const used = new Set<number>();
      const ops: Promise<void>[] = [];
      for (let i = 0; i < 200; i++) {
        const slot = randomInt(0, model.length / 4096);
        if (used.has(slot)) continue;
        used.add(slot);
        const len = randomInt(1, 4097);
        const off = slot * 4096 + randomInt(0, 4097 - len);
        const data = randomBytes(len);
        data.copy(model, off);
        ops.push(dev.write(off, data));
      }
      const big = randomInt(0, model.length / 4096 - 64) * 4096; // 256 KiB: the fs.write path
      if (![...Array(64).keys()].some((k) => used.has(big / 4096 + k))) {
        const data = randomBytes(256 * 1024);
        data.copy(model, big);
        ops.push(dev.write(big, data));
      }
      await Promise.all(ops);
      for (let i = 0; i < 50; i++) {
        const off = randomInt(0, model.length - 8192);
        const len = randomInt(1, 8193);
        assert.deepEqual(await dev.read(off, len), model.subarray(off, off + len), `round ${round}: read(${off}, ${len})`);
      }
    }
    await dev.flush();
  } finally {
    await dev.close();
  }
  assert.ok(readFileSync(path).equals(model), 'the file differs from the model');
}

test('concurrent small writes (batched) and reads (page cache) match a model, with and without the shortcuts', async () => {
  addon();
  const dir = scratchDir('nbdcrypt-fastpath-');
  try {
    for (const off of [false, true]) {
      const path = join(dir.path, `f-${off}`);
      const seed = randomBytes(4 * 1024 * 1024);
      writeFileSync(path, seed);
      // off: what NBDCRYPT_NOWAIT_IO=0 and NBDCRYPT_WRITE_BATCH=0 ask for.
      await workload(path, seed, off ? { nowaitIo: false, writeBatch: false } : {});
    }
  } finally {
    dir.remove();
  }
});

/** Bytes of `path` in the page cache, by fincore. */
function cachedBytes(path: string): number {
  return Number(run(requireTool('fincore', 'util-linux-extra'), ['--bytes', '--noheadings', '--output', 'RES', path]).stdout.trim());
}

test('a regular file is read without kernel readahead, unless asked for (NBDCRYPT_READAHEAD=1)', async () => {
  addon();
  const dir = scratchDir('nbdcrypt-fastpath-');
  try {
    for (const readahead of [false, true]) {
      const path = join(dir.path, `ra-${readahead}`);
      writeFileSync(path, randomBytes(8 * 1024 * 1024));
      const fd = openSync(path, 'r');
      fsyncSync(fd);
      closeSync(fd);
      run(requireTool('dd', 'coreutils'), [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']); // drop it from the cache
      assert.equal(cachedBytes(path), 0, 'the file left the page cache');
      const dev = await FileDevice.open(path, { fastPaths: { readahead } });
      try {
        for (let i = 0; i < 4; i++) await dev.read(i * 65536, 65536); // sequential: what readahead looks for
      } finally {
        await dev.close();
      }
      const cached = cachedBytes(path);
      if (readahead) assert.ok(cached > 4 * 65536, `with readahead the kernel reads ahead: ${cached} bytes cached`);
      else assert.equal(cached, 4 * 65536, 'without readahead exactly the bytes read are cached');
    }
  } finally {
    dir.remove();
  }
});
