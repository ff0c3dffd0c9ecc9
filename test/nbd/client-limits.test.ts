/**
 * The NBD client against nbdkit with the blocksize-policy filter set to reject violations
 * (minimum 4096, maximum 1 MiB) and the log filter as a witness: unaligned requests are
 * widened (read) or read-modify-written, large ones split at the maximum, and one flush serves
 * all parallel connections (the remote advertises CAN_MULTI_CONN). nbdkit is the oracle: a
 * violation fails.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openNbdDevice } from '../../src/backend/remote-target.js';
import { unixTransport } from '../../src/transport/unix.js';
import { requireTool, scratchDir, startProcess, waitFor, type Proc } from '../../peers/tools.js';

const MiB = 1024 * 1024;

describe('NBD client honours the remote block-size limits (nbdkit blocksize-policy)', () => {
  const dir = scratchDir('nbdcrypt-nbdkit-');
  const sock = join(dir.path, 'nbdkit.sock');
  const logFile = join(dir.path, 'requests.log');
  let proc: Proc;
  before(async () => {
    const nbdkit = requireTool('nbdkit', 'nbdkit');
    proc = startProcess(nbdkit, ['-f', '-U', sock, '--filter=log', '--filter=blocksize-policy', 'memory', '16M', `logfile=${logFile}`,
      'blocksize-minimum=4096', 'blocksize-preferred=4096', 'blocksize-maximum=1048576', 'blocksize-error-policy=error']);
    await waitFor('nbdkit socket', () => existsSync(sock), 10_000);
  });
  after(async () => {
    await proc?.stop();
    dir.remove();
  });

  it('widens unaligned reads, read-modify-writes unaligned writes, splits at the maximum', async () => {
    const c = await openNbdDevice(unixTransport({ path: sock }), '');
    const image = Buffer.alloc(16 * MiB);
    const big = randomBytes(3 * MiB + 4096);
    await c.write(8192, big);
    big.copy(image, 8192);
    const odd = randomBytes(5000);
    await c.write(12345, odd);
    odd.copy(image, 12345);
    assert.ok((await c.read(100, 7000)).equals(image.subarray(100, 7100)));
    assert.ok((await c.read(0, 4 * MiB)).equals(image.subarray(0, 4 * MiB)));
    await c.writeZeroes(4096, 2 * MiB + 4096);
    image.fill(0, 4096, 4096 + 2 * MiB + 4096);
    assert.ok((await c.read(0, 4 * MiB)).equals(image.subarray(0, 4 * MiB)));
    await c.close();
    const log = readFileSync(logFile, 'utf8');
    assert.ok(!/return=-1/.test(log) && !/error/i.test(log.replace(/blocksize-error-policy/g, '')), 'nbdkit saw no request violating its limits');
    const counts = [...log.matchAll(/(?:Read|Write|Zero) id=\d+ offset=0x([0-9a-f]+) count=0x([0-9a-f]+)/g)].map((m) => [parseInt(m[1]!, 16), parseInt(m[2]!, 16)] as const);
    assert.ok(counts.length > 0);
    for (const [off, n] of counts) {
      assert.equal(off % 4096, 0, `offset ${off} aligned`);
      assert.equal(n % 4096, 0, `count ${n} aligned`);
      assert.ok(n <= MiB, `count ${n} within the maximum`);
    }
  });

  it('sends one flush for all parallel connections (CAN_MULTI_CONN) and then empties the replay log', async () => {
    const c = await openNbdDevice(unixTransport({ path: sock }), '', { connections: 4 });
    try {
      assert.equal(c.connectionCount, 4);
      await Promise.all(Array.from({ length: 16 }, (_, i) => c.write(i * 65536, randomBytes(65536))));
      const log = () => readFileSync(logFile, 'utf8');
      const writers = new Set((log().match(/connection=(\d+) \.\.\.Write/g) ?? []).map((l) => l.split(' ')[0]));
      assert.ok(writers.size > 1, `the writes went over ${writers.size} connection(s), expected several`);
      const before = log().length;
      await c.flush();
      const flushes = log().slice(before).match(/connection=(\d+) \.\.\.Flush id=\d+ return=0/g) ?? [];
      assert.equal(flushes.length, 1, 'one flush covers the writes of every connection');
      assert.equal(c.replayBytes, 0, 'a completed flush empties the replay log');
    } finally {
      await c.close();
    }
  });
});
