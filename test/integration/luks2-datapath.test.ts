/**
 * Data written through nbdcrypt's EncryptedDevice decrypts with cryptsetup's userspace
 * reencrypt --decrypt (detached header, data offset 0; docs/formats.md, Checking with
 * cryptsetup), and data encrypted by cryptsetup's reencrypt --encrypt reads back as the same
 * plaintext through EncryptedDevice, for 512- and 4096-byte sectors (IV = 512-byte sector
 * number in both).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from '../../peers/tools.js';
import * as cs from '../../peers/cryptsetup.js';
import { ImageFile } from '../luks/image-file.js';
import { formatVolume } from '../../src/luks/format-volume.js';
import { openVolume } from '../../src/luks/open-volume.js';
import { EncryptedDevice } from '../../src/crypt/encrypted-device.js';

const DATA = 3 * 1024 * 1024;
let dir: { path: string; remove: () => void };
before(() => {
  cs.cryptsetup();
  dir = scratchDir('nbdcrypt-luks2-data-');
});
after(() => dir.remove());

for (const sectorSize of [4096, 512] as const) {
  test(`nbdcrypt-encrypted data (sector ${sectorSize}) decrypts with cryptsetup reencrypt --decrypt`, async () => {
    const hdr = join(dir.path, `h-${sectorSize}.img`);
    const data = join(dir.path, `d-${sectorSize}.img`);
    writeFileSync(hdr, '');
    truncateSync(hdr, 16 * 1024 * 1024);
    writeFileSync(data, Buffer.alloc(DATA));
    const plain = randomBytes(DATA);
    const h = new ImageFile(hdr);
    const v = await formatVolume(h, Buffer.from('data pw'), { pbkdf: 'pbkdf2', pbkdfForceIterations: 1000, sectorSize, dataOffset: 0 });
    await h.close();
    const lower = new ImageFile(data);
    const enc = new EncryptedDevice(lower, { key: v.volumeKey, dataOffset: v.dataOffset, sectorSize: v.sectorSize, ivTweak: v.ivTweak });
    // An unaligned write in the middle exercises the read-modify-write path too.
    await enc.write(0, plain.subarray(0, DATA / 2));
    await enc.write(DATA / 2, plain.subarray(DATA / 2, DATA / 2 + 777));
    await enc.write(DATA / 2 + 777, plain.subarray(DATA / 2 + 777));
    await enc.flush();
    await enc.close();
    assert.notDeepEqual(readFileSync(data).subarray(0, 4096), plain.subarray(0, 4096), 'ciphertext must differ from plaintext');
    cs.reencryptDecrypt(data, hdr, 'data pw');
    assert.ok(readFileSync(data).equals(plain), 'cryptsetup decrypted nbdcrypt ciphertext to the same plaintext');
  });

  test(`cryptsetup reencrypt --encrypt data (sector ${sectorSize}) reads back through EncryptedDevice`, async () => {
    const hdr = join(dir.path, `ch-${sectorSize}.img`);
    const data = join(dir.path, `cd-${sectorSize}.img`);
    const plain = randomBytes(DATA);
    writeFileSync(data, plain);
    cs.reencryptEncrypt(data, hdr, 'their pw', { sectorSize, pbkdf: 'argon2id' });
    assert.ok(!readFileSync(data).subarray(0, 4096).equals(plain.subarray(0, 4096)));
    const h = new ImageFile(hdr, { readOnly: true });
    const v = await openVolume(h, Buffer.from('their pw'));
    await h.close();
    assert.equal(v.dataOffset, 0);
    assert.equal(v.sectorSize, sectorSize);
    const lower = new ImageFile(data, { readOnly: true });
    const enc = new EncryptedDevice(lower, { key: v.volumeKey, dataOffset: 0, sectorSize: v.sectorSize, ivTweak: v.ivTweak });
    const got = await enc.read(0, DATA);
    assert.ok(got.equals(plain), 'EncryptedDevice reads cryptsetup ciphertext as the original plaintext');
    const mid = await enc.read(12345, 10000);
    assert.ok(mid.equals(plain.subarray(12345, 22345)));
    await enc.close();
  });
}
