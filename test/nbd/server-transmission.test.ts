import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CF, Cmd, Err, MAX_PAYLOAD, SIMPLE_REPLY_MAGIC, TF } from '../../src/nbd/protocol.js';
import { NbdServer } from '../../src/nbd/server.js';
import { checkRequest } from '../../src/nbd/request-check.js';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { scratchDir } from '../../peers/tools.js';
import { RawConn } from './raw-nbd.js';
import { SlowDevice } from './slow-device.js';

const SIZE = 4 << 20;
const dir = scratchDir();
const slow = new SlowDevice(new MemoryDevice(SIZE), (op, offset) => (offset === SIZE - 4096 ? 200 : 0));
const nozero = new SlowDevice(new MemoryDevice(SIZE), () => 0, { zeroes: false, trim: false, flush: false, fua: false, multiConn: false });
const server = new NbdServer({
  exports: [
    { name: 'disk', device: slow },
    { name: 'ro', device: new MemoryDevice(SIZE, { readOnly: true }) },
    { name: 'plain', device: nozero },
  ],
});
let address = '';

before(async () => {
  address = await server.listen(`unix:${join(dir.path, 'nbd.sock')}`);
});
after(async () => {
  await server.close();
  dir.remove();
});

async function open(name = 'disk'): Promise<RawConn> {
  const c = await RawConn.open(address);
  await c.go(name);
  return c;
}

async function expectReply(c: RawConn, cookie: bigint, error: number, dataLen = 0): Promise<Buffer> {
  const r = await c.readSimpleReply();
  assert.equal(r.magic, SIMPLE_REPLY_MAGIC);
  assert.equal(r.cookie, cookie);
  assert.equal(r.error, error, `errno for cookie ${cookie}`);
  return error === 0 && dataLen > 0 ? Buffer.from(await c.read(dataLen)) : Buffer.alloc(0);
}

test('200 pipelined writes then reads round-trip, every cookie answered once', async () => {
  const c = await open();
  const data = randomBytes(200 * 4096);
  for (let i = 0; i < 200; i++) c.request(Cmd.WRITE, BigInt(i), i * 4096, 4096, i % 7 === 0 ? CF.FUA : 0, data.subarray(i * 4096, (i + 1) * 4096));
  const seen = new Set<bigint>();
  for (let i = 0; i < 200; i++) {
    const r = await c.readSimpleReply();
    assert.equal(r.error, 0);
    seen.add(r.cookie);
  }
  assert.equal(seen.size, 200);
  for (let i = 0; i < 200; i++) c.request(Cmd.READ, BigInt(1000 + i), i * 4096, 4096);
  for (let i = 0; i < 200; i++) {
    const r = await c.readSimpleReply();
    const i2 = Number(r.cookie) - 1000;
    assert.deepEqual(Buffer.from(await c.read(4096)), data.subarray(i2 * 4096, (i2 + 1) * 4096));
  }
  c.request(Cmd.FLUSH, 7n, 0, 0);
  await expectReply(c, 7n, 0);
  c.destroy();
});

test('replies go out of order: a slow read does not hold back a fast one', async () => {
  const c = await open();
  c.request(Cmd.READ, 1n, SIZE - 4096, 4096);
  c.request(Cmd.READ, 2n, 0, 512);
  assert.equal((await c.readSimpleReply()).cookie, 2n);
  await c.read(512);
  await expectReply(c, 1n, 0, 4096);
  c.destroy();
});

test('errors: EINVAL for reads past the end, ENOSPC for writes past the end, EPERM when read-only', async () => {
  const c = await open();
  c.request(Cmd.READ, 1n, SIZE - 1, 2);
  await expectReply(c, 1n, Err.EINVAL);
  c.request(Cmd.READ, 2n, 1n << 63n, 1);
  await expectReply(c, 2n, Err.EINVAL);
  c.request(Cmd.WRITE, 3n, SIZE, 4096, 0, Buffer.alloc(4096, 1)); // payload must be consumed
  await expectReply(c, 3n, Err.ENOSPC);
  c.request(Cmd.WRITE_ZEROES, 4n, SIZE - 10, 11);
  await expectReply(c, 4n, Err.ENOSPC);
  c.request(Cmd.READ, 5n, MAX_PAYLOAD, MAX_PAYLOAD + 1);
  await expectReply(c, 5n, Err.EINVAL);
  c.request(99, 6n, 0, 0);
  await expectReply(c, 6n, Err.EINVAL);
  c.request(Cmd.BLOCK_STATUS, 7n, 0, 4096);
  await expectReply(c, 7n, Err.EINVAL);
  c.request(Cmd.READ, 8n, 0, 4096, 1 << 9);
  await expectReply(c, 8n, Err.EINVAL);
  c.request(Cmd.READ, 9n, 0, 4096, CF.FUA); // FUA on a read is allowed
  await expectReply(c, 9n, 0, 4096);
  c.destroy();

  const ro = await open('ro');
  ro.request(Cmd.WRITE, 1n, 0, 512, 0, Buffer.alloc(512));
  await expectReply(ro, 1n, Err.EPERM);
  ro.request(Cmd.TRIM, 2n, 0, 512);
  await expectReply(ro, 2n, Err.EPERM);
  ro.request(Cmd.WRITE_ZEROES, 3n, 0, 512);
  await expectReply(ro, 3n, Err.EPERM);
  ro.request(Cmd.READ, 4n, 0, 512);
  await expectReply(ro, 4n, 0, 512);
  ro.destroy();
});

test('write zeroes, trim, cache; FAST_ZERO fails fast without native zeroing; unadvertised commands are EINVAL', async () => {
  const c = await open();
  c.request(Cmd.WRITE, 1n, 8192, 4096, 0, Buffer.alloc(4096, 0xee));
  await expectReply(c, 1n, 0);
  c.request(Cmd.WRITE_ZEROES, 2n, 8193, 100, CF.NO_HOLE | CF.FAST_ZERO | CF.FUA);
  await expectReply(c, 2n, 0);
  c.request(Cmd.READ, 3n, 8192, 4096);
  const back = await expectReply(c, 3n, 0, 4096);
  assert.equal(back[0], 0xee);
  assert.ok(back.subarray(1, 101).every((b) => b === 0));
  assert.equal(back[101], 0xee);
  c.request(Cmd.TRIM, 4n, 0, 4096);
  await expectReply(c, 4n, 0);
  c.request(Cmd.CACHE, 5n, 0, 4096);
  await expectReply(c, 5n, 0);
  c.destroy();

  const p = await open('plain');
  p.request(Cmd.WRITE_ZEROES, 1n, 0, 4096, CF.FAST_ZERO);
  await expectReply(p, 1n, Err.ENOTSUP);
  p.request(Cmd.WRITE_ZEROES, 2n, 0, 4096);
  await expectReply(p, 2n, 0);
  p.request(Cmd.TRIM, 3n, 0, 4096);
  await expectReply(p, 3n, Err.EINVAL);
  p.request(Cmd.FLUSH, 4n, 0, 0);
  await expectReply(p, 4n, Err.EINVAL);
  p.destroy();
});

test('bad magic closes that connection only; an oversized write is refused and closes', async () => {
  const a = await open();
  const b = await open();
  const bad = Buffer.alloc(28, 0x41);
  a.send(bad);
  assert.ok(await a.waitClosed(), 'bad magic must close the connection');
  b.request(Cmd.READ, 1n, 0, 512);
  await expectReply(b, 1n, 0, 512);
  b.request(Cmd.WRITE, 2n, 0, MAX_PAYLOAD + 1);
  await expectReply(b, 2n, Err.EINVAL);
  assert.ok(await b.waitClosed(), 'an oversized write payload cannot be skipped: close');
  const c = await open();
  c.request(Cmd.READ, 3n, 0, 512);
  await expectReply(c, 3n, 0, 512);
  c.destroy();
});

test('DISC: requests in flight are answered, then the server closes', async () => {
  const c = await open();
  c.request(Cmd.READ, 1n, SIZE - 4096, 4096); // slow
  c.request(Cmd.DISC, 2n, 0, 0);
  c.request(Cmd.READ, 3n, 0, 4096); // after DISC: ignored
  await expectReply(c, 1n, 0, 4096);
  assert.ok(await c.waitClosed());
  assert.equal(c.buffered, 0);
});

test('back-pressure: at most maxInFlightRequests reach the device; all requests are answered', async () => {
  const d2 = scratchDir();
  const dev = new SlowDevice(new MemoryDevice(1 << 20), () => 5);
  const s = new NbdServer({ exports: [{ name: 'disk', device: dev }], limits: { maxInFlightRequests: 4, maxInFlightBytes: 64 * 1024 } });
  try {
    const c = await RawConn.open(await s.listen(`unix:${join(d2.path, 's.sock')}`));
    await c.go();
    for (let i = 0; i < 60; i++) c.request(i % 2 ? Cmd.READ : Cmd.WRITE, BigInt(i), i * 4096, 4096, 0, i % 2 ? undefined : Buffer.alloc(4096, i));
    for (let i = 0; i < 60; i++) {
      const r = await c.readSimpleReply();
      assert.equal(r.error, 0);
      if (Number(r.cookie) % 2) await c.read(4096);
    }
    assert.ok(dev.peak <= 4, `peak concurrency ${dev.peak} exceeds the limit`);
    assert.ok(dev.peak >= 2, 'requests should overlap');
    c.destroy();
  } finally {
    await s.close();
    d2.remove();
  }
});

test('close() finishes requests in flight before closing connections', async () => {
  const d2 = scratchDir();
  const dev = new SlowDevice(new MemoryDevice(1 << 20), () => 150);
  const s = new NbdServer({ exports: [{ name: 'disk', device: dev }] });
  const c = await RawConn.open(await s.listen(`unix:${join(d2.path, 's.sock')}`));
  await c.go();
  c.request(Cmd.WRITE, 1n, 0, 4096, 0, Buffer.alloc(4096, 3));
  await new Promise((r) => setTimeout(r, 20));
  const closing = s.close();
  await expectReply(c, 1n, 0);
  await closing;
  assert.ok(await c.waitClosed());
  d2.remove();
});

test('checkRequest is total over odd inputs', () => {
  const ctx = { size: 1 << 20, transmissionFlags: TF.HAS_FLAGS | TF.SEND_WRITE_ZEROES };
  assert.deepEqual(checkRequest({ type: Cmd.READ, flags: 0, cookie: 0n, offset: 0n, length: 0 }, ctx), { kind: 'run', payload: 0, offset: 0 });
  assert.equal(checkRequest({ type: Cmd.WRITE, flags: 0, cookie: 0n, offset: 2n ** 64n - 1n, length: 10 }, ctx).kind, 'error');
  assert.equal(checkRequest({ type: Cmd.WRITE_ZEROES, flags: CF.FAST_ZERO, cookie: 0n, offset: 0n, length: 1 }, ctx).kind, 'error');
  assert.deepEqual(checkRequest({ type: Cmd.DISC, flags: 0xffff, cookie: 0n, offset: 5n, length: 5 }, ctx), { kind: 'disconnect' });
});
