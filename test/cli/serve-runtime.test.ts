/**
 * The runtime a serving command creates (src/cli/serve-runtime.ts) reaches the layers it
 * builds: a buffer that the target and the encryption layer hand out comes from the
 * runtime's pool (releasing it there is counted as a free buffer, which the pool does only
 * for buffers it lent), and the layers built without a runtime use fresh buffers instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BufferPool } from '../../src/block/buffer-pool.js';
import { openTarget } from '../../src/backend/open-target.js';
import { EncryptedDevice } from '../../src/crypt/encrypted-device.js';
import { readEnvironment } from '../../src/cli/environment.js';
import { createServeRuntime, withRuntime } from '../../src/cli/serve-runtime.js';

test('the target and the encryption layer lend buffers from the runtime pool', async () => {
  const rt = createServeRuntime(readEnvironment({}));
  const pool = rt.io.buffers;
  assert.ok(pool instanceof BufferPool);
  const lower = await openTarget('memory:1M', withRuntime({}, rt));
  const enc = new EncryptedDevice(lower, { key: randomBytes(64), dataOffset: 0, sectorSize: 4096, buffers: pool });
  try {
    pool.release(await lower.read(0, 65536));
    assert.equal(pool.idleBytes, 65536, 'the memory target read into a pooled buffer');
    pool.release(await enc.read(65536, 65536));
    assert.equal(pool.idleBytes, 65536, 'the encrypted read reused it and gave back a pooled buffer');
    const other = await openTarget('memory:1M');
    pool.release(await other.read(0, 65536));
    assert.equal(pool.idleBytes, 65536, 'a target opened without the runtime does not use its pool');
    await other.close();
  } finally {
    await enc.close();
  }
});
