/**
 * Ciphertext made by cryptsetup itself decrypts to the known plaintext with every XTS engine
 * and through EncryptedDevice: the detached-header `cryptsetup reencrypt --encrypt` recipe of
 * docs/formats.md, Checking with cryptsetup (userspace, no root, data offset 0) at sector sizes
 * 4096 and 512, volume key from `luksDump --dump-volume-key`. EncryptedDevice also sees the
 * ciphertext behind a non-zero dataOffset, since tweaks count from the segment start, and what
 * it writes is what cryptsetup would have written. The same recipe with cryptsetup's other AES
 * specs (CBC with essiv:sha256, plain64 and plain IVs, 256-bit XTS) checks that a 4096-byte
 * sector is one CBC chain whose IV is the number of its first 512-byte sector, as dm-crypt
 * does without iv_large_sectors. (Twofish and Serpent would need the kernel's ciphers, which
 * this kernel lacks; qemu is their oracle: test/integration/cipher-qemu-luks.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { run, scratchDir } from '../../peers/tools.js';
import { cryptsetup, fastPbkdf, reencryptEncrypt, volumeKey } from '../../peers/cryptsetup.js';
import { createSectorCipher } from '../../src/crypt/sector-cipher.js';
import { createXtsCipher } from '../../src/crypt/xts-cipher.js';
import { EncryptedDevice } from '../../src/crypt/encrypted-device.js';
import { MemoryDevice } from '../../src/block/memory-device.js';

const PASS = 'correct horse battery staple';
const SIZE = 2 << 20;

for (const sectorSize of [4096, 512] as const) {
  test(`cryptsetup reencrypt --encrypt ciphertext (sector ${sectorSize}) decrypts with every engine and EncryptedDevice`, async () => {
    cryptsetup();
    const dir = scratchDir();
    try {
      const data = join(dir.path, 'd.img');
      const header = join(dir.path, 'h.img');
      const plain = randomBytes(SIZE);
      writeFileSync(data, plain);
      writeFileSync(header, '');
      truncateSync(header, 16 << 20);
      reencryptEncrypt(data, header, PASS, { sectorSize, pbkdf: 'pbkdf2' });
      const cipher = readFileSync(data);
      assert.equal(cipher.length, SIZE);
      assert.notDeepEqual(cipher.subarray(0, 4096), plain.subarray(0, 4096));
      const key = volumeKey(header, PASS);
      assert.equal(key.length, 64);

      for (const engine of ['native', 'node', 'reference'] as const) {
        const c = createXtsCipher(key, engine);
        // The reference engine is slow: give it the first and last 64 KiB only.
        const parts = engine === 'reference' ? [0, SIZE - 65536].map((o) => [o, 65536]) : [[0, SIZE]];
        for (const [off, len] of parts) {
          const b = Buffer.from(cipher.subarray(off!, off! + len!));
          await c.decryptAsync(b, off! / 512, sectorSize);
          assert.ok(b.equals(plain.subarray(off!, off! + len!)), `${engine} decrypts cryptsetup's ciphertext at ${off}`);
          c.encrypt(b, off! / 512, sectorSize);
          assert.ok(b.equals(cipher.subarray(off!, off! + len!)), `${engine} re-encrypts to cryptsetup's ciphertext at ${off}`);
        }
        c.destroy();
      }

      // Behind 1 MiB of something else: the segment starts at dataOffset, tweaks at 0.
      const pad = 1 << 20;
      const lower = new MemoryDevice(pad + SIZE);
      await lower.write(pad, cipher);
      const dev = new EncryptedDevice(lower, { key, dataOffset: pad, sectorSize });
      assert.equal(dev.size, SIZE);
      assert.ok((await dev.read(0, SIZE)).equals(plain));
      assert.ok((await dev.read(12345, 100000)).equals(plain.subarray(12345, 112345)));
      // Rewrite some plaintext (unaligned) and compare with cryptsetup's bytes for it.
      await dev.write(777, plain.subarray(777, 777 + 50000));
      assert.ok((await lower.read(pad, SIZE)).equals(cipher), 'rewriting the same plaintext gives cryptsetup ciphertext');
      await dev.close();
    } finally {
      dir.remove();
    }
  });
}

const otherSpecs = [
  { cipher: 'aes-cbc-essiv:sha256', keyBits: 256 },
  { cipher: 'aes-cbc-plain64', keyBits: 256 },
  { cipher: 'aes-cbc-plain', keyBits: 128 },
  { cipher: 'aes-xts-plain64', keyBits: 256 },
];

for (const { cipher, keyBits } of otherSpecs) {
  test(`cryptsetup reencrypt --encrypt --cipher ${cipher} --key-size ${keyBits} (sectors 4096 and 512) decrypts on every engine`, async () => {
    const dir = scratchDir();
    try {
      for (const sectorSize of [4096, 512]) {
        const data = join(dir.path, 'd.img');
        const header = join(dir.path, 'h.img');
        const plain = randomBytes(SIZE / 2);
        writeFileSync(data, plain);
        writeFileSync(header, '');
        truncateSync(header, 16 << 20);
        run(
          cryptsetup(),
          ['reencrypt', '--encrypt', '--type', 'luks2', '--cipher', cipher, '--key-size', String(keyBits), '--header', header, '--sector-size', String(sectorSize), '--force-offline-reencrypt', '--batch-mode', ...fastPbkdf('pbkdf2'), '--key-file', '-', data],
          { input: PASS, timeoutMs: 120_000 },
        );
        const ct = readFileSync(data);
        const key = volumeKey(header, PASS);
        assert.equal(key.length * 8, keyBits);
        for (const engine of ['native', 'node', 'reference'] as const) {
          const c = createSectorCipher(cipher, key, engine);
          const b = Buffer.from(ct);
          await c.decryptAsync(b, 0, sectorSize);
          assert.ok(b.equals(plain), `${engine}: decrypts cryptsetup's ${cipher} at sector size ${sectorSize}`);
          c.encrypt(b, 0, sectorSize);
          assert.ok(b.equals(ct), `${engine}: re-encrypts to cryptsetup's bytes`);
          c.destroy();
        }
        const lower = new MemoryDevice(ct.length);
        await lower.write(0, ct);
        const dev = new EncryptedDevice(lower, { key, cipher, dataOffset: 0, sectorSize });
        assert.ok((await dev.read(4000, 100000)).equals(plain.subarray(4000, 104000)), 'EncryptedDevice reads it');
        await dev.close();
      }
    } finally {
      dir.remove();
    }
  });
}
