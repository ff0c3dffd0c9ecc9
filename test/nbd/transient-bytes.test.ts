/**
 * The NBD server reports each socket read as short-lived Buffer bytes (transient-buffers.ts)
 * to the noteTransientBytes it was given,
 * so the heap guard can collect them young: nbdcopy writes 16 MiB into an in-process server
 * and at least that much is reported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { NbdServer } from '../../src/nbd/server.js';
import { unpooled } from '../../src/block/buffer-pool.js';
import { nbdcopyAsync } from '../../peers/nbdcopy.js';
import { scratchDir } from '../../peers/tools.js';

const SIZE = 16 * 1024 * 1024;

test('the NBD server reports the bytes its sockets delivered', async () => {
  const dir = scratchDir('nbdcrypt-transient-');
  let reported = 0;
  const io = { buffers: unpooled, noteTransientBytes: (n: number) => (reported += n) };
  const server = new NbdServer({ exports: [{ name: 'disk', device: new MemoryDevice(SIZE) }], io });
  try {
    const sock = join(dir.path, 'nbd.sock');
    await server.listen(`unix:${sock}`);
    const src = join(dir.path, 'src.bin');
    writeFileSync(src, randomBytes(SIZE));
    await nbdcopyAsync(src, `nbd+unix:///disk?socket=${sock}`, { timeoutMs: 60_000 });
    assert.ok(reported >= SIZE, `${reported} bytes reported for a ${SIZE}-byte copy`);
  } finally {
    await server.close(5000);
    dir.remove();
  }
});
