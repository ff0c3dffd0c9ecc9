/**
 * The LUKS1 code on an in-memory device: the keyslot layout cryptsetup writes, format/open
 * round trips for each cipher family and hash (with the data readable through EncryptedDevice),
 * the header codec round trip, hostile or damaged headers refused with EBADHDR naming the
 * field before any key derivation, the PBKDF2 cost bound, wrong passphrases, and the
 * keyslot operations' limits (8 slots, last-slot guard).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { EncryptedDevice } from '../../src/crypt/encrypted-device.js';
import { isNbdcryptError } from '../../src/errors.js';
import { PBKDF2_MAX_ITERATIONS } from '../../src/luks/kdf-cost-limits.js';
import { addKey, changeKey, removeKey } from '../../src/luks/key-operations.js';
import { formatLuks1Volume, type Luks1FormatOptions } from '../../src/luks/luks1-format.js';
import { keyslotLayout, parseLuks1Header, serializeLuks1Header, LUKS1_PHDR_SIZE } from '../../src/luks/luks1-header.js';
import { openVolume } from '../../src/luks/open-volume.js';

const MiB = 1024 * 1024;
const pw = (s: string) => Buffer.from(s);
const cheap: Luks1FormatOptions = { pbkdfForceIterations: 1000 };

async function fresh(o: Luks1FormatOptions = {}): Promise<{ dev: MemoryDevice; key: Buffer }> {
  const dev = new MemoryDevice(4 * MiB);
  const v = await formatLuks1Volume(dev, pw('secret'), { ...cheap, ...o });
  return { dev, key: v.volumeKey };
}

async function patch(dev: MemoryDevice, offset: number, edit: (b: Buffer) => void): Promise<void> {
  const b = await dev.read(0, LUKS1_PHDR_SIZE);
  edit(b.subarray(offset));
  await dev.write(0, b);
}

test('keyslot layout as cryptsetup writes it: 4096-byte aligned areas from sector 8', () => {
  assert.deepEqual(keyslotLayout(32), { offsets: [8, 264, 520, 776, 1032, 1288, 1544, 1800], end: 2056 });
  assert.deepEqual(keyslotLayout(64).offsets.slice(0, 3), [8, 512, 1016]);
  assert.deepEqual(keyslotLayout(16), { offsets: [8, 136, 264, 392, 520, 648, 776, 904], end: 1032 });
});

test('format then open, for each cipher family, key size and hash; the data round-trips', async () => {
  for (const o of [
    { cipher: 'aes-xts-plain64', keyBits: 512, hash: 'sha256' },
    { cipher: 'twofish-cbc-essiv:sha256', keyBits: 256, hash: 'sha1' },
    { cipher: 'serpent-cbc-plain', keyBits: 128, hash: 'ripemd160' },
    { cipher: 'aes-ecb', keyBits: 192, hash: 'sha512' },
  ]) {
    const { dev, key } = await fresh(o);
    const v = await openVolume(dev, pw('secret'));
    assert.deepEqual(v.volumeKey, key, o.cipher);
    assert.equal(v.format, 'LUKS1');
    assert.equal(v.cipher, o.cipher);
    assert.equal(v.dataOffset, (o.keyBits <= 192 ? 2048 : 4096) * 512);
    const h = parseLuks1Header(await dev.read(0, LUKS1_PHDR_SIZE));
    assert.deepEqual(serializeLuks1Header(h), await dev.read(0, LUKS1_PHDR_SIZE), 'codec round trip');
    assert.equal(h.hashSpec, o.hash);
    const enc = new EncryptedDevice(dev, { key: v.volumeKey, cipher: v.cipher, dataOffset: v.dataOffset, sectorSize: 512 });
    await enc.write(1000, Buffer.alloc(3000, 0xab));
    const again = new EncryptedDevice(dev, { key, cipher: v.cipher, dataOffset: v.dataOffset, sectorSize: 512 });
    assert.ok((await again.read(1000, 3000)).every((b) => b === 0xab));
    assert.equal((await dev.read(v.dataOffset + 1000, 3000)).every((b) => b === 0xab), false, 'ciphertext on the device');
    await enc.close();
    await again.close();
  }
});

test('a wrong passphrase is ENOKEY and writes nothing', async () => {
  const { dev } = await fresh();
  const before = await dev.read(0, 2 * MiB);
  await assert.rejects(openVolume(dev, pw('wrong')), (e) => isNbdcryptError(e, 'ENOKEY') && /keyslot 0/.test(e.message));
  assert.deepEqual(await dev.read(0, 2 * MiB), before);
});

test('hostile or damaged headers: EBADHDR naming the field', async () => {
  const cases: Array<[string, number, (b: Buffer) => void, RegExp]> = [
    ['stripes', 208 + 44, (b) => b.writeUInt32BE(3999, 0), /keyslot 0 has 3999 stripes/],
    ['overlap', 208 + 48 + 40, (b) => b.writeUInt32BE(100, 0), /overlaps/],
    ['inside header', 208 + 40, (b) => b.writeUInt32BE(1, 0), /inside the header/],
    ['into payload', 104, (b) => b.writeUInt32BE(1024, 0), /reaches into the payload/],
    ['state', 208 + 48, (b) => b.writeUInt32BE(0x12345678, 0), /keyslot 1 state 0x12345678/],
    ['hash', 72, (b) => b.write('whirlpool\0', 0, 'latin1'), /hash 'whirlpool'/],
    ['unterminated', 8, (b) => b.fill(0x61, 0, 32), /cipher-name is not NUL-terminated/],
    ['past the end', 208 + 7 * 48 + 40, (b) => b.writeUInt32BE(8000, 0), /past the end|reaches into the payload/],
    ['cipher', 40, (b) => b.write('cbc-essiv:md5\0', 0, 'latin1'), /ESSIV hash 'md5'/],
    ['key size', 108, (b) => b.writeUInt32BE(20, 0), /160-bit key is not supported/],
  ];
  for (const [what, offset, edit, msg] of cases) {
    const { dev } = await fresh();
    await patch(dev, offset, edit);
    await assert.rejects(openVolume(dev, pw('secret')), (e) => isNbdcryptError(e, 'EBADHDR') && msg.test(e.message), what);
  }
});

test('a keyslot or digest asking for more than 2^26 PBKDF2 iterations is refused before deriving', async () => {
  for (const offset of [164, 208 + 4]) {
    const { dev } = await fresh();
    await patch(dev, offset, (b) => b.writeUInt32BE(PBKDF2_MAX_ITERATIONS + 1, 0));
    const t0 = Date.now();
    await assert.rejects(openVolume(dev, pw('secret')), (e) => isNbdcryptError(e, 'EBADHDR') && /unreasonable key derivation cost/.test(e.message));
    assert.ok(Date.now() - t0 < 60_000);
  }
});

test('key operations: 8 slots, explicit slots, change moves to a free slot, last-slot guard', async () => {
  const { dev, key } = await fresh();
  const slots: number[] = [];
  for (let i = 1; i < 8; i++) slots.push(await addKey(dev, pw('secret'), pw(`p${i}`), cheap));
  assert.deepEqual(slots, [1, 2, 3, 4, 5, 6, 7]);
  await assert.rejects(addKey(dev, pw('secret'), pw('p8'), cheap), (e) => isNbdcryptError(e, 'ENOTSUP') && /all 8/.test(e.message));
  assert.equal(await removeKey(dev, pw('p3')), 3);
  await assert.rejects(addKey(dev, pw('secret'), pw('x'), { ...cheap, keySlot: 8 }), (e) => isNbdcryptError(e, 'EUSAGE') && /0 … 7/.test(e.message));
  await assert.rejects(addKey(dev, pw('secret'), pw('x'), { ...cheap, keySlot: 2 }), (e) => isNbdcryptError(e, 'EEXIST'));
  assert.equal(await changeKey(dev, pw('p5'), pw('five'), cheap), 3, 'to the free slot 3');
  assert.equal((await openVolume(dev, pw('five'))).keyslot, 3);
  await assert.rejects(openVolume(dev, pw('p5')), (e) => isNbdcryptError(e, 'ENOKEY'));
  assert.equal(await changeKey(dev, pw('p6'), pw('six'), { ...cheap, keySlot: 6 }), 6, 'in place');
  for (const p of ['secret', 'p1', 'p2', 'five', 'six', 'p7']) await removeKey(dev, pw(p));
  await assert.rejects(removeKey(dev, pw('p4')), (e) => isNbdcryptError(e, 'EUSAGE') && /last one/.test(e.message));
  await assert.rejects(addKey(dev, pw('p4'), pw('x'), { pbkdf: 'argon2id' }), (e) => isNbdcryptError(e, 'EUSAGE') && /pbkdf2 only/.test(e.message));
  assert.deepEqual((await openVolume(dev, pw('p4'))).volumeKey, key);
});

test('a detached LUKS1 header (payload offset 0) is refused, never served over its own header', async () => {
  const { dev } = await fresh();
  await patch(dev, 104, (b) => b.writeUInt32BE(0, 0));
  await assert.rejects(openVolume(dev, pw('secret')), (e) => isNbdcryptError(e, 'ENOTSUP') && /detached LUKS1 header/.test(e.message));
});
