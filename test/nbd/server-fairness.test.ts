/**
 * A client that stops reading its replies may only ever block itself. One raw connection
 * sends a dozen 4 MiB READs and never reads a byte back; its replies fill the socket and stay
 * counted against the server-wide budget. A second client's 4 KiB read must still be answered
 * at once, and the stuck connection must not get more than its share of the budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { NbdServer } from '../../src/nbd/server.js';
import { Cmd, SIMPLE_REPLY_MAGIC } from '../../src/nbd/protocol.js';
import { scratchDir } from '../../peers/tools.js';
import { RawConn } from './raw-nbd.js';
import { SlowDevice } from './slow-device.js';

const MiB = 1024 * 1024;
const BUDGET = 24 * MiB;
const READ = 4 * MiB;

/** Polls `cond` every 20 ms for at most `ms`. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

test('a client that never reads its replies does not delay another client, and holds at most its share', { timeout: 60_000 }, async () => {
  const dir = scratchDir('nbdcrypt-fair-');
  const dev = new SlowDevice(new MemoryDevice(64 * MiB), () => 0);
  const server = new NbdServer({ exports: [{ name: 'disk', device: dev }], maxTotalInFlightBytes: BUDGET });
  try {
    const address = await server.listen(`unix:${join(dir.path, 'nbd.sock')}`);
    const stuck = await RawConn.open(address);
    await stuck.go();
    stuck.socket.pause(); // from here on it reads nothing: replies pile up in the server
    for (let i = 0; i < 12; i++) stuck.request(Cmd.READ, BigInt(i), i * READ, READ);
    // The budget admits BUDGET / READ of them while the stuck connection is alone.
    assert.ok(await until(() => dev.calls >= BUDGET / READ, 10_000), `only ${dev.calls} reads reached the device`);
    await new Promise((r) => setTimeout(r, 300));
    // One more only if the kernel took a whole 4 MiB reply (a unix socket buffers ~200 KiB).
    const stuckCalls = dev.calls;
    assert.ok(stuckCalls <= BUDGET / READ + 1, `the stuck connection got ${stuckCalls} reads of 4 MiB under a 24 MiB budget`);

    const other = await RawConn.open(address);
    await other.go();
    for (let i = 0; i < 3; i++) {
      other.request(Cmd.READ, 100n + BigInt(i), 0, 4096);
      const r = await other.readSimpleReply(5000);
      assert.equal(r.magic, SIMPLE_REPLY_MAGIC);
      assert.equal(r.error, 0);
      assert.equal(r.cookie, 100n + BigInt(i));
      await other.read(4096, 5000);
    }
    // Still no more for the stuck connection: it holds its share (and then some) already.
    assert.equal(dev.calls, stuckCalls + 3);
    // Its unread replies are all the server keeps for it: within the budget.
    assert.ok(server.bufferedBytes <= BUDGET + 1024 * 1024, `${server.bufferedBytes} bytes buffered`);
    other.destroy();
    stuck.destroy();
  } finally {
    await server.close(2000);
    dir.remove();
  }
});
