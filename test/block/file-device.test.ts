import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileDevice } from '../../src/block/file-device.js';
import { isNbdcryptError } from '../../src/errors.js';
import { openTarget } from '../../src/backend/open-target.js';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { parseSize } from '../../src/size.js';
import { requireTool, run, scratchDir } from '../../peers/tools.js';

test('creates a sparse file of createSize and reads zeroes from it', async () => {
  const dir = scratchDir();
  try {
    const path = join(dir.path, 'img');
    const dev = await FileDevice.open(path, { createSize: 1 << 30 });
    assert.equal(dev.size, 1 << 30);
    assert.ok(statSync(path).blocks * 512 < 1 << 20, 'the new file must be sparse');
    assert.ok((await dev.read((1 << 30) - 4096, 4096)).every((b) => b === 0));
    assert.deepEqual(dev.caps, { flush: true, fua: true, trim: true, zeroes: false, multiConn: true, readOnly: false });
    await dev.close();
  } finally {
    dir.remove();
  }
});

test('positional reads and writes at any alignment, flush, FUA, write zeroes, trim', async () => {
  const dir = scratchDir();
  try {
    const path = join(dir.path, 'img');
    writeFileSync(path, Buffer.alloc(3 << 20, 0x5a));
    const dev = await FileDevice.open(path);
    const data = randomBytes((1 << 20) + 3);
    await dev.write(4093, data, true);
    await dev.write(0, Buffer.from([1]));
    await dev.writeZeroes(2 << 20, 5000);
    await dev.trim(5 << 19, 4096); // untouched by the checks below (trim has its own test)
    await dev.flush();
    assert.deepEqual(await dev.read(4093, data.length), data);
    const file = readFileSync(path);
    assert.deepEqual(file.subarray(4093, 4093 + data.length), data);
    assert.ok(file.subarray(2 << 20, (2 << 20) + 5000).every((b) => b === 0));
    assert.equal(file[(2 << 20) + 5000], 0x5a);
    await assert.rejects(dev.read((3 << 20) - 1, 2), (e) => isNbdcryptError(e, 'ERANGE'));
    await assert.rejects(dev.write(3 << 20, Buffer.alloc(1)), (e) => isNbdcryptError(e, 'ERANGE'));
    await dev.close();
    await assert.rejects(dev.read(0, 1), (e) => isNbdcryptError(e, 'ECLOSED'));
  } finally {
    dir.remove();
  }
});

test('trim punches a hole: the range reads zeroes, its blocks are freed, the rest is untouched', async () => {
  const dir = scratchDir();
  try {
    const path = join(dir.path, 'img');
    const content = randomBytes(4 << 20);
    writeFileSync(path, content);
    const dev = await FileDevice.open(path);
    await dev.flush();
    const before = statSync(path).blocks * 512;
    await dev.trim(1 << 20, 2 << 20);
    await dev.trim(5, 100); // inside one block: zeroed, nothing freed
    const after = statSync(path).blocks * 512;
    assert.ok(before - after >= 2 << 20, `2 MiB of blocks freed (${before} -> ${after} bytes allocated)`);
    const expect = Buffer.from(content);
    expect.fill(0, 1 << 20, 3 << 20).fill(0, 5, 105);
    assert.ok((await dev.read(0, 4 << 20)).equals(expect), 'through the device');
    assert.ok(readFileSync(path).equals(expect), 'in the file');
    assert.equal(statSync(path).size, 4 << 20, 'the size is kept');
    await dev.close();
  } finally {
    dir.remove();
  }
});

test('read-only: writes fail with EROFS, reads work', async () => {
  const dir = scratchDir();
  try {
    const path = join(dir.path, 'img');
    writeFileSync(path, Buffer.alloc(8192, 7));
    const dev = await FileDevice.open(path, { readOnly: true });
    assert.equal(dev.caps.readOnly, true);
    assert.equal((await dev.read(100, 10))[0], 7);
    await assert.rejects(dev.write(0, Buffer.alloc(1)), (e) => isNbdcryptError(e, 'EROFS'));
    await assert.rejects(dev.writeZeroes(0, 1), (e) => isNbdcryptError(e, 'EROFS'));
    await dev.close();
    await assert.rejects(FileDevice.open(join(dir.path, 'missing')), (e) => isNbdcryptError(e, 'EIO'));
  } finally {
    dir.remove();
  }
});

test('a loop block device: size from sysfs, data visible in the backing file', async () => {
  const losetup = requireTool('losetup', 'mount');
  const dir = scratchDir();
  const path = join(dir.path, 'img');
  writeFileSync(path, Buffer.alloc(4 << 20));
  const loop = run(losetup, ['-f', '--show', path]).stdout.trim();
  try {
    const dev = await FileDevice.open(loop);
    assert.equal(dev.isBlockDevice, true);
    assert.equal(dev.size, 4 << 20);
    await dev.write(1 << 20, Buffer.alloc(4096, 0xa5));
    await dev.flush();
    await dev.close();
  } finally {
    run(losetup, ['-d', loop]);
  }
  assert.equal(readFileSync(path)[(1 << 20) + 100], 0xa5);
  dir.remove();
});

test('openTarget dispatches file:, plain paths and memory:; parseSize understands suffixes', async () => {
  const dir = scratchDir();
  try {
    const path = join(dir.path, 'img');
    writeFileSync(path, Buffer.alloc(12345));
    for (const spec of [`file:${path}`, path]) {
      const d = await openTarget(spec, { readOnly: true });
      assert.ok(d instanceof FileDevice);
      assert.equal(d.size, 12345);
      await d.close();
    }
    const m = await openTarget('memory:64M');
    assert.ok(m instanceof MemoryDevice);
    assert.equal(m.size, 64 << 20);
    await assert.rejects(openTarget('gopher://x'), (e) => isNbdcryptError(e, 'EUSAGE'));
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('512K'), 512 << 10);
    assert.equal(parseSize('1G'), 1 << 30);
    assert.equal(parseSize('1GiB'), 1 << 30);
    assert.equal(parseSize('1.5M'), 1.5 * 2 ** 20);
    assert.throws(() => parseSize('12Q'), (e) => isNbdcryptError(e, 'EUSAGE'));
    assert.throws(() => parseSize('0.3'), (e) => isNbdcryptError(e, 'EUSAGE'));
  } finally {
    dir.remove();
  }
});
