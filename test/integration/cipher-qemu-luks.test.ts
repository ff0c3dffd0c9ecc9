/**
 * The cipher engines against qemu's own LUKS1 implementation (an independent oracle: qemu's
 * crypto layer over nettle/gcrypt). For each cipher × mode × IV × key size qemu-img formats a
 * LUKS1 image; keyslot 0 is unlocked here with the same cipher (luks1-keyslot-oracle.ts: the
 * header's digest must match, so the keyslot decryption is checked too) and, for AES, the
 * volume key is compared with `cryptsetup luksDump --dump-volume-key` (this kernel has no
 * Twofish or Serpent, which cryptsetup would need). Then qemu writes random plaintext and
 * EncryptedDevice reads it back from the raw image on the native and node engines, and in
 * the other direction EncryptedDevice writes and qemu reads. Needs qemu-img (qemu-utils) and
 * cryptsetup (cryptsetup-bin).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EncryptedDevice } from '../../src/crypt/encrypted-device.js';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { requireTool, run, scratchDir } from '../../peers/tools.js';
import { volumeKey as cryptsetupVolumeKey } from '../../peers/cryptsetup.js';
import { unlockLuks1 } from '../crypt/luks1-keyslot-oracle.js';
import { qemuLuksCreate } from '../../peers/qemu-luks.js';

const PAYLOAD = 1 << 20;
const PASS = 'qemu-oracle passphrase';

interface Case {
  /** qemu's cipher-alg, cipher-mode, ivgen-alg. */
  alg: string;
  mode: 'xts' | 'cbc';
  ivgen: 'plain64' | 'plain' | 'essiv';
  /** The spec cryptsetup would name it by. */
  spec: string;
  keyBits: number;
}

const cases: Case[] = [
  { alg: 'twofish-256', mode: 'cbc', ivgen: 'essiv', spec: 'twofish-cbc-essiv:sha256', keyBits: 256 },
  { alg: 'twofish-256', mode: 'xts', ivgen: 'plain64', spec: 'twofish-xts-plain64', keyBits: 512 },
  { alg: 'twofish-128', mode: 'xts', ivgen: 'plain64', spec: 'twofish-xts-plain64', keyBits: 256 },
  { alg: 'twofish-192', mode: 'xts', ivgen: 'plain', spec: 'twofish-xts-plain', keyBits: 384 },
  { alg: 'twofish-128', mode: 'cbc', ivgen: 'plain', spec: 'twofish-cbc-plain', keyBits: 128 },
  { alg: 'serpent-256', mode: 'xts', ivgen: 'plain64', spec: 'serpent-xts-plain64', keyBits: 512 },
  { alg: 'serpent-256', mode: 'cbc', ivgen: 'essiv', spec: 'serpent-cbc-essiv:sha256', keyBits: 256 },
  { alg: 'serpent-128', mode: 'cbc', ivgen: 'plain64', spec: 'serpent-cbc-plain64', keyBits: 128 },
  { alg: 'serpent-192', mode: 'xts', ivgen: 'essiv', spec: 'serpent-xts-essiv:sha256', keyBits: 384 },
  { alg: 'aes-256', mode: 'cbc', ivgen: 'essiv', spec: 'aes-cbc-essiv:sha256', keyBits: 256 },
  { alg: 'aes-256', mode: 'xts', ivgen: 'plain64', spec: 'aes-xts-plain64', keyBits: 512 },
  { alg: 'aes-128', mode: 'xts', ivgen: 'plain64', spec: 'aes-xts-plain64', keyBits: 256 },
  { alg: 'aes-128', mode: 'cbc', ivgen: 'plain', spec: 'aes-cbc-plain', keyBits: 128 },
  { alg: 'aes-256', mode: 'cbc', ivgen: 'plain64', spec: 'aes-cbc-plain64', keyBits: 256 },
];

function secretArgs(passFile: string): string[] {
  return ['--object', `secret,id=sec0,file=${passFile}`];
}

/** Plaintext file -> image (qemu encrypts), or image -> plaintext file (qemu decrypts). */
function qemuConvert(passFile: string, img: string, plain: string, toImage: boolean): void {
  const qemuImg = requireTool('qemu-img', 'qemu-utils');
  const luks = `driver=luks,key-secret=sec0,file.filename=${img}`;
  const args = toImage
    ? ['convert', '-n', '-f', 'raw', plain, ...secretArgs(passFile), '--target-image-opts', luks]
    : ['convert', ...secretArgs(passFile), '--image-opts', luks, '-O', 'raw', plain];
  run(qemuImg, args, { timeoutMs: 120_000 });
}

for (const c of cases) {
  test(`qemu LUKS1 ${c.alg} ${c.mode}-${c.ivgen} (${c.spec}, ${c.keyBits}-bit key): keyslot, qemu -> nbdcrypt, nbdcrypt -> qemu`, async () => {
    const dir = scratchDir('nbdcrypt-qemu-luks-');
    try {
      const img = join(dir.path, 'disk.luks');
      const passFile = join(dir.path, 'pass');
      writeFileSync(passFile, PASS, { mode: 0o600 });
      qemuLuksCreate(img, passFile, { cipherAlg: c.alg, cipherMode: c.mode, ivgenAlg: c.ivgen, hashAlg: 'sha256' }, PAYLOAD);

      const header = readFileSync(img);
      const native = unlockLuks1(header, Buffer.from(PASS), 'native');
      const node = unlockLuks1(header, Buffer.from(PASS), 'node');
      assert.equal(native.spec.name, c.spec);
      assert.equal(native.volumeKey.length * 8, c.keyBits);
      assert.deepEqual(node.volumeKey, native.volumeKey, 'the node engine unlocks the same key');
      if (c.alg.startsWith('aes')) assert.deepEqual(cryptsetupVolumeKey(img, PASS), native.volumeKey, 'cryptsetup agrees on the volume key');

      // qemu encrypts, nbdcrypt decrypts.
      const p1 = randomBytes(256 * 1024);
      const plainIn = join(dir.path, 'p1.raw');
      writeFileSync(plainIn, p1);
      qemuConvert(passFile, img, plainIn, true);
      const image = readFileSync(img);
      for (const engine of ['native', 'node'] as const) {
        const lower = new MemoryDevice(image.length);
        await lower.write(0, image);
        const dev = new EncryptedDevice(lower, { key: native.volumeKey, cipher: c.spec, dataOffset: native.payloadOffset, sectorSize: 512, engine });
        assert.equal(dev.cipherName, c.spec);
        assert.equal(dev.size, PAYLOAD);
        assert.ok((await dev.read(0, p1.length)).equals(p1), `${engine} engine reads what qemu wrote`);
        await dev.close();
      }

      // nbdcrypt encrypts (unaligned writes included), qemu decrypts.
      const lower = new MemoryDevice(image.length);
      await lower.write(0, image);
      const dev = new EncryptedDevice(lower, { key: native.volumeKey, cipher: c.spec, dataOffset: native.payloadOffset, sectorSize: 512, engine: 'native' });
      const p2 = randomBytes(PAYLOAD);
      await dev.write(0, p2.subarray(0, 300_001));
      await dev.write(300_001, p2.subarray(300_001));
      writeFileSync(img, await lower.read(0, image.length));
      await dev.close();
      const plainOut = join(dir.path, 'p2.raw');
      qemuConvert(passFile, img, plainOut, false);
      assert.ok(readFileSync(plainOut).equals(p2), 'qemu reads what nbdcrypt wrote');
    } finally {
      dir.remove();
    }
  });
}
