/**
 * The reproduction with real clients: nbdcopy reads with four connections of 32 MiB requests
 * and is then stopped (SIGSTOP), so its replies pile up unread in the server. qemu-io's 4 KiB
 * read on a new connection must still be answered, well within its time bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { NbdServer } from '../../src/nbd/server.js';
import { qemuIoAsync } from '../../peers/qemu-io.js';
import { requireTool, scratchDir, startProcess } from '../../peers/tools.js';
import { SlowDevice } from '../nbd/slow-device.js';

const MiB = 1024 * 1024;

test('a stopped nbdcopy holding 32 MiB replies does not stall qemu-io on another connection', { timeout: 120_000 }, async () => {
  const dir = scratchDir('nbdcrypt-stuck-');
  // 4 GiB that reads as zeroes without being allocated; each read takes 20 ms.
  const dev = new SlowDevice(new MemoryDevice(4096 * MiB), () => 20);
  const server = new NbdServer({ exports: [{ name: 'disk', device: dev }], maxTotalInFlightBytes: 24 * MiB });
  const sock = join(dir.path, 'nbd.sock');
  const uri = `nbd+unix:///disk?socket=${sock}`;
  let copy: ReturnType<typeof startProcess> | undefined;
  try {
    await server.listen(`unix:${sock}`);
    copy = startProcess(requireTool('nbdcopy', 'libnbd-bin'), ['--request-size=33554432', '--requests=4', uri, '/dev/null']);
    // Let it get going, then freeze it: its replies stop being read.
    for (let i = 0; i < 100 && dev.calls < 8; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(dev.calls >= 1, 'nbdcopy sent no request');
    process.kill(copy.pid, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, 1000));
    const out = await qemuIoAsync(uri, ['read 0 4k'], { timeoutMs: 15_000 });
    assert.match(out, /read 4096\/4096 bytes/);
  } finally {
    if (copy) {
      process.kill(copy.pid, 'SIGKILL');
      await copy.exited;
    }
    await server.close(2000);
    dir.remove();
  }
});
