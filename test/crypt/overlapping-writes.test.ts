/**
 * Many overlapping sub-sector writes through the NBD front end into one encrypted 4 KiB
 * sector, from two connections at once, with the lower device completing out of order: every
 * write is answered, and the sector ends up holding each 512-byte slot's last write. Each
 * connection owns four of the eight slots, so the expected contents do not depend on how the
 * two connections interleave. Lock table costs are counted in
 * sector-locks.test.ts; this one checks the outcome.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { EncryptedDevice } from '../../src/crypt/encrypted-device.js';
import { NbdServer } from '../../src/nbd/server.js';
import { Cmd } from '../../src/nbd/protocol.js';
import { scratchDir } from '../../peers/tools.js';
import { RawConn } from '../nbd/raw-nbd.js';
import { RecordingDevice } from './recording-device.js';

const key = randomBytes(64);
const PER_CONN = 1000;

test('2 × 1000 overlapping 512-byte writes into one encrypted sector all land, in arrival order', { timeout: 120_000 }, async () => {
  const dir = scratchDir('nbdcrypt-overlap-');
  const lower = new RecordingDevice(1 << 20);
  lower.record = false;
  lower.jitter = 3;
  const dev = new EncryptedDevice(lower, { key, dataOffset: 0, sectorSize: 4096, engine: 'node' });
  const server = new NbdServer({ exports: [{ name: 'disk', device: dev }] });
  try {
    const address = await server.listen(`unix:${join(dir.path, 'nbd.sock')}`);
    const conns = [await RawConn.open(address), await RawConn.open(address)];
    for (const c of conns) await c.go();
    const expected = Buffer.alloc(4096);
    conns.forEach((c, k) => {
      for (let i = 0; i < PER_CONN; i++) {
        const slot = k * 4 + (i % 4);
        const data = Buffer.alloc(512);
        data.writeUInt32BE(i, 0);
        data.fill(k + 1, 4);
        c.request(Cmd.WRITE, BigInt(i), slot * 512, 512, 0, data);
        data.copy(expected, slot * 512);
      }
    });
    for (const c of conns) {
      const seen = new Set<bigint>();
      for (let i = 0; i < PER_CONN; i++) {
        const r = await c.readSimpleReply(60_000);
        assert.equal(r.error, 0);
        seen.add(r.cookie);
      }
      assert.equal(seen.size, PER_CONN);
    }
    conns[0]!.request(Cmd.READ, 9999n, 0, 4096);
    assert.equal((await conns[0]!.readSimpleReply()).error, 0);
    assert.deepEqual(Buffer.from(await conns[0]!.read(4096)), expected);
    for (const c of conns) c.destroy();
  } finally {
    await server.close(5000);
    dir.remove();
  }
});
