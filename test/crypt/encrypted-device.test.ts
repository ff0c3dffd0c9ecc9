/**
 * EncryptedDevice behaviour, one test per rule: size and offset mapping, tweak = plaintext
 * sector + ivTweak, unaligned read-modify-write, the caller's buffer is never encrypted,
 * WRITE_ZEROES as encrypted zeroes in bounded chunks, TRIM only for whole sectors and only
 * with allowDiscards, FUA/flush passed through, capabilities, errors, close() wiping the key
 * and closing the lower device. See src/crypt/encrypted-device.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { EncryptedDevice } from '../../src/crypt/encrypted-device.js';
import { isNbdcryptError } from '../../src/errors.js';
import { RecordingDevice } from './recording-device.js';

const key = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f' + 'f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100', 'hex');

function xtsDecrypt(ct: Buffer, tweak: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32LE(tweak % 2 ** 32, 0);
  iv.writeUInt32LE(Math.floor(tweak / 2 ** 32), 4);
  const d = createDecipheriv('aes-256-xts', key, iv);
  return Buffer.concat([d.update(ct), d.final()]);
}

test('size is the whole sectors after dataOffset; caps mirror the lower device except zeroes', () => {
  const lower = new RecordingDevice((1 << 20) + 1000, { fua: false, multiConn: false });
  const dev = new EncryptedDevice(lower, { key, dataOffset: 8192, sectorSize: 4096 });
  assert.equal(dev.size, Math.floor(((1 << 20) + 1000 - 8192) / 4096) * 4096);
  assert.deepEqual(dev.caps, { flush: true, fua: false, trim: false, zeroes: false, multiConn: false, readOnly: false });
  const d2 = new EncryptedDevice(lower, { key, dataOffset: 0, sectorSize: 512, allowDiscards: true });
  assert.equal(d2.size, (1 << 20) + 512);
  assert.equal(d2.caps.trim, true);
  assert.throws(() => new EncryptedDevice(lower, { key, dataOffset: 100, sectorSize: 512 }), { name: 'RangeError', message: /dataOffset/ });
  assert.throws(() => new EncryptedDevice(lower, { key, dataOffset: 0, sectorSize: 1000 }), { name: 'RangeError', message: /sectorSize/ });
  assert.throws(() => new EncryptedDevice(lower, { key, dataOffset: 0, sectorSize: 512, ivTweak: -1 }), { name: 'RangeError', message: /ivTweak/ });
});

for (const sectorSize of [512, 4096]) {
  test(`sector ${sectorSize}: ciphertext lands at dataOffset + n·size with tweak n·size/512 + ivTweak`, async () => {
    const lower = new RecordingDevice(1 << 20);
    const dataOffset = 16384;
    const ivTweak = 1000;
    const dev = new EncryptedDevice(lower, { key, dataOffset, sectorSize, ivTweak });
    const plain = randomBytes(5 * sectorSize);
    await dev.write(3 * sectorSize, plain);
    for (let i = 0; i < 5; i++) {
      const n = 3 + i;
      const ct = await lower.mem.read(dataOffset + n * sectorSize, sectorSize);
      assert.deepEqual(xtsDecrypt(ct, (n * sectorSize) / 512 + ivTweak), plain.subarray(i * sectorSize, (i + 1) * sectorSize));
    }
    assert.deepEqual(await dev.read(3 * sectorSize, 5 * sectorSize), plain);
    await dev.close();
  });

  test(`sector ${sectorSize}: unaligned writes keep the neighbouring bytes of their sectors`, async () => {
    const lower = new RecordingDevice(1 << 20);
    const dev = new EncryptedDevice(lower, { key, dataOffset: 0, sectorSize });
    const base = randomBytes(8 * sectorSize);
    await dev.write(0, base);
    const model = Buffer.from(base);
    for (const [off, len] of [[1, 1], [sectorSize - 3, 7], [sectorSize + 5, 3 * sectorSize], [7 * sectorSize + 100, 50], [0, sectorSize + 1]] as const) {
      const d = randomBytes(len);
      await dev.write(off, d);
      d.copy(model, off);
      assert.deepEqual(await dev.read(0, model.length), model);
      assert.deepEqual(await dev.read(off, len), d);
    }
    await dev.close();
  });
}

test("write never encrypts or keeps the caller's buffer", async () => {
  const lower = new RecordingDevice(1 << 20);
  const dev = new EncryptedDevice(lower, { key, dataOffset: 0, sectorSize: 4096 });
  for (const [off, len] of [[0, 65536], [4096, 4096], [100, 10000], [0, 1 << 19]]) {
    const d = randomBytes(len!);
    const copy = Buffer.from(d);
    await dev.write(off!, d);
    assert.deepEqual(d, copy);
    d.fill(0); // reusing it afterwards must not change the device
    assert.deepEqual(await dev.read(off!, len!), copy);
  }
  await dev.close();
});

test('writeZeroes writes encrypted zeroes in chunks of at most 1 MiB, with RMW at the edges', async () => {
  const lower = new RecordingDevice(8 << 20);
  const dev = new EncryptedDevice(lower, { key, dataOffset: 4096, sectorSize: 4096 });
  await dev.write(0, randomBytes(dev.size));
  lower.calls.length = 0;
  await dev.writeZeroes(1000, (5 << 20) + 3);
  const writes = lower.calls.filter((c) => c.op === 'write');
  assert.ok(writes.length >= 5);
  assert.ok(writes.every((w) => w.length! <= (1 << 20) + 4096), 'bounded chunks');
  assert.equal(lower.calls.filter((c) => c.op === 'writeZeroes' || c.op === 'trim').length, 0, 'never the lower zero/trim');
  assert.ok((await dev.read(1000, (5 << 20) + 3)).equals(Buffer.alloc((5 << 20) + 3)));
  assert.notDeepEqual(await lower.mem.read(4096 + 4096, 4096), Buffer.alloc(4096), 'the lower device holds ciphertext of zeroes');
  assert.notDeepEqual(await dev.read(0, 1000), Buffer.alloc(1000), 'bytes before the range kept');
  await dev.close();
});

test('trim is a successful no-op without allowDiscards', async () => {
  const lower = new RecordingDevice(1 << 20);
  const dev = new EncryptedDevice(lower, { key, dataOffset: 0, sectorSize: 4096 });
  const d = randomBytes(65536);
  await dev.write(0, d);
  lower.calls.length = 0;
  await dev.trim(0, 65536);
  assert.deepEqual(lower.calls, []);
  assert.deepEqual(await dev.read(0, 65536), d);
  await dev.close();
});

test('trim with allowDiscards passes only the whole sectors inside the range', async () => {
  const lower = new RecordingDevice(1 << 20);
  const dev = new EncryptedDevice(lower, { key, dataOffset: 8192, sectorSize: 4096, allowDiscards: true });
  const d = randomBytes(65536);
  await dev.write(0, d);
  lower.calls.length = 0;
  await dev.trim(100, 4000); // inside one sector: nothing whole
  assert.deepEqual(lower.calls, []);
  await dev.trim(1000, 3 * 4096 + 100); // 1000..13388: only sectors 1 and 2 are whole
  assert.deepEqual(lower.calls, [{ op: 'trim', offset: 8192 + 4096, length: 2 * 4096 }]);
  assert.deepEqual(await dev.read(0, 4096), d.subarray(0, 4096), 'partial sector 0 untouched');
  assert.deepEqual(await dev.read(3 * 4096, 4096), d.subarray(3 * 4096, 4 * 4096), 'partial sector 3 untouched');
  await dev.close();
});

test('FUA and flush pass through; reads and writes go down as one request when aligned', async () => {
  const lower = new RecordingDevice(1 << 20);
  const dev = new EncryptedDevice(lower, { key, dataOffset: 0, sectorSize: 4096 });
  await dev.write(8192, randomBytes(32768), true);
  await dev.write(8192, randomBytes(32768));
  await dev.flush();
  await dev.read(4096, 65536);
  assert.deepEqual(lower.calls, [
    { op: 'write', offset: 8192, length: 32768, fua: true },
    { op: 'write', offset: 8192, length: 32768, fua: false },
    { op: 'flush' },
    { op: 'read', offset: 4096, length: 65536 },
  ]);
  lower.calls.length = 0;
  await dev.write(100, randomBytes(10), true);
  assert.deepEqual(lower.calls, [
    { op: 'read', offset: 0, length: 4096 },
    { op: 'write', offset: 0, length: 4096, fua: true },
  ]);
  await dev.close();
});

test('range, read-only and closed errors carry their codes', async () => {
  const ro = new RecordingDevice(1 << 20, { readOnly: true });
  const dev = new EncryptedDevice(ro, { key, dataOffset: 0, sectorSize: 512 });
  assert.equal(dev.caps.readOnly, true);
  await assert.rejects(dev.write(0, Buffer.alloc(512)), (e) => isNbdcryptError(e, 'EROFS'));
  await assert.rejects(dev.writeZeroes(0, 512), (e) => isNbdcryptError(e, 'EROFS'));
  await assert.rejects(dev.read(dev.size - 10, 11), (e) => isNbdcryptError(e, 'ERANGE'));
  await assert.rejects(dev.read(-1, 1), (e) => isNbdcryptError(e, 'ERANGE'));
  assert.equal((await dev.read(0, 0)).length, 0);
  await dev.close();
  await assert.rejects(dev.read(0, 512), (e) => isNbdcryptError(e, 'ECLOSED'));
});

test('close() waits for requests in flight, then wipes the key and closes the lower device', async () => {
  const lower = new RecordingDevice(4 << 20);
  lower.jitter = 3;
  const dev = new EncryptedDevice(lower, { key, dataOffset: 0, sectorSize: 4096 });
  const d = randomBytes(1 << 20);
  const pending = dev.write(0, d);
  const closing = dev.close();
  await pending;
  await closing;
  const ops = lower.calls.map((c) => c.op);
  assert.deepEqual(ops, ['write', 'close'], 'the write reached the lower device before it was closed');
  await assert.rejects(dev.write(0, d), (e) => isNbdcryptError(e, 'ECLOSED'));
  await dev.close(); // idempotent
});
