/**
 * The LUKS2 volume API on an in-memory device: format/open round trip, wrong passphrase
 * writes nothing, corruption of the primary copy is recovered from the secondary and
 * repaired, both copies damaged fails cleanly with nothing written, a stale (lower seqid)
 * copy is rewritten, keyslot limits (32 slots, last-slot guard), header backup/restore.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { openVolume } from '../../src/luks/open-volume.js';
import { formatVolume, type FormatOptions } from '../../src/luks/format-volume.js';
import { addKey, removeKey, changeKey } from '../../src/luks/key-operations.js';
import { backupHeader, restoreHeader } from '../../src/luks/header-backup.js';
import { readHeaders } from '../../src/luks/luks2-header.js';
import { isNbdcryptError } from '../../src/errors.js';
import { recordWrites } from './image-file.js';

const MiB = 1024 * 1024;
const cheap: FormatOptions = { pbkdf: 'pbkdf2', pbkdfForceIterations: 1000 };
const pw = (s: string) => Buffer.from(s);

async function fresh(opts: FormatOptions = cheap): Promise<{ dev: MemoryDevice; key: Buffer }> {
  const dev = new MemoryDevice(17 * MiB);
  const v = await formatVolume(dev, pw('secret'), opts);
  return { dev, key: v.volumeKey };
}

async function flipBit(dev: MemoryDevice, offset: number, bit = 0): Promise<void> {
  const b = await dev.read(offset, 1);
  b[0]! ^= 1 << bit;
  await dev.write(offset, b);
}

test('format then open returns the same key and the layout cryptsetup uses', async () => {
  const { dev, key } = await fresh({ ...cheap, label: 'lbl', uuid: '01234567-89ab-cdef-0123-456789abcdef', sectorSize: 512 });
  const v = await openVolume(dev, pw('secret'));
  assert.deepEqual(v.volumeKey, key);
  assert.deepEqual(
    { ...v, volumeKey: undefined },
    { format: 'LUKS2', cipher: 'aes-xts-plain64', volumeKey: undefined, dataOffset: 16 * MiB, sectorSize: 512, ivTweak: 0, keyslot: 0, uuid: '01234567-89ab-cdef-0123-456789abcdef', label: 'lbl', dataSize: MiB },
  );
});

test('argon2id keyslot (native argon2) and the @noble fallback derive the same key', async () => {
  const { dev, key } = await fresh({ pbkdfMemoryKiB: 8192, pbkdfForceIterations: 4, pbkdfParallel: 2 });
  assert.deepEqual((await openVolume(dev, pw('secret'), { engines: { argon2: 'noble' } })).volumeKey, key);
});

test('wrong passphrase: ENOKEY, one clear message, nothing written', async () => {
  const { dev: mem } = await fresh();
  const { dev, writes } = recordWrites(mem);
  await assert.rejects(openVolume(dev, pw('nope')), (e) => isNbdcryptError(e, 'ENOKEY') && /wrong passphrase for keyslot 0; no data was changed/.test(e.message));
  await assert.rejects(openVolume(dev, pw('secret'), { keySlot: 3 }), (e) => isNbdcryptError(e, 'ENOKEY') && /keyslot 3 is not in use/.test(e.message));
  assert.deepEqual(writes, []);
});

test('bit flips in the primary header: opens from the secondary and the primary is repaired', async () => {
  for (const at of [0, 8, 16, 200, 448, 5000]) {
    const { dev, key } = await fresh();
    await flipBit(dev, at, at % 8);
    const before = await readHeaders(dev);
    assert.ok(before.primary instanceof Error, `flip at ${at} must damage the primary`);
    const v = await openVolume(dev, pw('secret'));
    assert.deepEqual(v.volumeKey, key);
    const afterRead = await readHeaders(dev);
    assert.ok(!(afterRead.primary instanceof Error), `primary repaired after flip at ${at}`);
    assert.deepEqual(afterRead.stale, []);
  }
});

test('a damaged primary on a read-only device opens but is not written', async () => {
  const { dev: mem, key } = await fresh();
  await flipBit(mem, 300);
  const snapshot = await mem.read(0, 16 * MiB);
  const { dev: rec, writes } = recordWrites(mem);
  const readOnly = Object.create(rec, { caps: { value: { ...mem.caps, readOnly: true } } }) as typeof rec;
  assert.deepEqual((await openVolume(readOnly, pw('secret'))).volumeKey, key);
  assert.deepEqual(writes, []);
  assert.ok((await mem.read(0, 16 * MiB)).equals(snapshot));
});

test('both copies damaged: EBADHDR naming both, nothing written', async () => {
  const { dev: mem } = await fresh();
  await flipBit(mem, 100);
  await flipBit(mem, 0x4000 + 100);
  const { dev, writes } = recordWrites(mem);
  await assert.rejects(openVolume(dev, pw('secret')), (e) => isNbdcryptError(e, 'EBADHDR') && /both LUKS2 header copies are unusable/.test(e.message));
  assert.deepEqual(writes, []);
  const blank = new MemoryDevice(17 * MiB);
  await assert.rejects(openVolume(blank, pw('x')), (e) => isNbdcryptError(e, 'EBADHDR') && /no LUKS2 header found/.test(e.message));
});

test('an older secondary (interrupted update) loses to the primary and is rewritten', async () => {
  const { dev } = await fresh();
  const oldSecondary = await dev.read(0x4000, 0x4000);
  await addKey(dev, pw('secret'), pw('two'), cheap);
  await dev.write(0x4000, oldSecondary); // as if the crash happened before the secondary write
  const r = await readHeaders(dev);
  assert.deepEqual(r.stale, ['secondary']);
  assert.equal((await openVolume(dev, pw('two'))).keyslot, 1);
  const r2 = await readHeaders(dev);
  assert.deepEqual(r2.stale, []);
  assert.equal((r2.secondary as { seqid: bigint }).seqid, (r2.primary as { seqid: bigint }).seqid);
});

test('keyslots: 32 at most, lowest free slot first, change keeps the number, the last one needs force', async () => {
  const { dev, key } = await fresh();
  for (let i = 1; i < 32; i++) assert.equal(await addKey(dev, pw('secret'), pw(`k${i}`), cheap), i);
  await assert.rejects(addKey(dev, pw('secret'), pw('k32'), cheap), /all 32 keyslots are in use/);
  assert.equal(await removeKey(dev, pw('k7')), 7);
  assert.equal(await addKey(dev, pw('k8'), pw('again'), cheap), 7);
  assert.equal(await changeKey(dev, pw('k31'), pw('k31b'), cheap), 31);
  assert.equal((await openVolume(dev, pw('k31b'))).keyslot, 31);
  await assert.rejects(openVolume(dev, pw('k31')), (e) => isNbdcryptError(e, 'ENOKEY'));
  assert.deepEqual((await openVolume(dev, pw('again'))).volumeKey, key);
  const single = (await fresh()).dev;
  await assert.rejects(removeKey(single, pw('secret')), /last one/);
  assert.equal(await removeKey(single, pw('secret'), { force: true }), 0);
  await assert.rejects(openVolume(single, pw('secret')), (e) => isNbdcryptError(e, 'ENOKEY'));
});

test('header backup is validated before restore writes anything', async () => {
  const { dev, key } = await fresh();
  const backup = await backupHeader(dev);
  assert.equal(backup.length, 16 * MiB);
  await dev.writeZeroes(0, 64 * 1024);
  const broken = Buffer.from(backup);
  broken[100]! ^= 1;
  broken[0x4000 + 100]! ^= 1;
  const { dev: rec, writes } = recordWrites(dev);
  await assert.rejects(restoreHeader(rec, broken), (e) => isNbdcryptError(e, 'EBADHDR') && /nothing was written/.test(e.message));
  await assert.rejects(restoreHeader(rec, backup.subarray(0, 1 << 20)), (e) => isNbdcryptError(e, 'EBADHDR'));
  assert.deepEqual(writes, []);
  await restoreHeader(dev, backup);
  assert.deepEqual((await openVolume(dev, pw('secret'))).volumeKey, key);
  const other = (await fresh()).dev;
  await assert.rejects(restoreHeader(other, backup), (e) => isNbdcryptError(e, 'EEXIST'));
});

test('format checks its arguments', async () => {
  await assert.rejects(formatVolume(new MemoryDevice(8 * MiB), pw('x'), cheap), /too small/);
  await assert.rejects(formatVolume(new MemoryDevice(16 * MiB + 6000), pw('x'), cheap), /not a multiple/);
  await assert.rejects(formatVolume(new MemoryDevice(17 * MiB), pw('x'), { ...cheap, uuid: 'nope' }), /UUID/);
  await assert.rejects(formatVolume(new MemoryDevice(17 * MiB), pw('x'), { ...cheap, label: 'x'.repeat(48) }), /too long/);
  await assert.rejects(formatVolume(new MemoryDevice(17 * MiB, { readOnly: true }), pw('x'), cheap), (e) => isNbdcryptError(e, 'EROFS'));
});
