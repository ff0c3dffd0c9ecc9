/**
 * One writer per local image: a FileDevice opened for writing with `lock` holds an flock
 * that util-linux flock(1) sees, and is refused (EBUSY, naming the holder's pid) while
 * another process holds one; the lock goes with the holder; opens in this one process share
 * it; read-only opens take none.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileDevice } from '../../src/block/file-device.js';
import { isNbdcryptError } from '../../src/errors.js';
import { requireTool, run, scratchDir, startProcess, waitFor } from '../../peers/tools.js';

describe('local image lock (flock)', () => {
  const dir = scratchDir('nbdcrypt-flock-');
  after(() => dir.remove());
  const flock = requireTool('flock', 'util-linux');
  const file = join(dir.path, 'disk.img');
  writeFileSync(file, Buffer.alloc(1 << 20));
  const othersCanLock = (): boolean => run(flock, ['-n', file, 'true'], { allowFail: true }).status === 0;

  it('a writer holds an exclusive flock while open; readers and this process share', async () => {
    assert.ok(othersCanLock(), 'free before');
    const ro = await FileDevice.open(file, { readOnly: true, lock: true });
    assert.ok(othersCanLock(), 'a read-only open takes no lock');
    const dev = await FileDevice.open(file, { lock: true });
    assert.equal(othersCanLock(), false, 'flock(1) sees our lock');
    const again = await FileDevice.open(file, { lock: true });
    await again.close();
    await dev.close();
    await ro.close();
    assert.ok(othersCanLock(), 'closing drops it');
  });

  it('refuses while another process holds it, naming that process; its death frees the file', async () => {
    // -o: the lock stays with flock(1) itself, not with the sleep it runs.
    const holder = startProcess(flock, ['-o', file, 'sleep', '60']);
    try {
      await waitFor('flock(1) to hold the file', () => !othersCanLock(), 10_000);
      await assert.rejects(FileDevice.open(file, { lock: true }), (e: unknown) => isNbdcryptError(e, 'EBUSY') && new RegExp(`in use: process ${holder.pid} \\(flock\\)`).test(e.message));
    } finally {
      // Its sleep first (by parent pid), so nothing outlives the test.
      run('pkill', ['-P', String(holder.pid)], { allowFail: true });
      await holder.stop();
    }
    const dev = await FileDevice.open(file, { lock: true });
    await dev.close();
  });
});
