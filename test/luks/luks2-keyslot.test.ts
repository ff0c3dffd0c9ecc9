/**
 * One LUKS2 keyslot on its own: store then open gives the key back (argon2id and pbkdf2),
 * a wrong passphrase or a damaged byte of key material gives a different key (which the
 * digest then rejects), the derivation in a child process gives the same bytes as in this
 * process, and aborting it ends it at once with EINTR instead of waiting for the KDF.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { isNbdcryptError } from '../../src/errors.js';
import { deriveKey, deriveKeyAbortable } from '../../src/luks/kdf.js';
import { keyslotAreaSize, openKeyslot, storeKeyslot } from '../../src/luks/luks2-keyslot.js';
import type { Kdf, Keyslot } from '../../src/luks/luks2-metadata.js';

const AREA = 0x8000;

function keyslot(kdf: Kdf): Keyslot {
  return { id: 0, type: 'luks2', keySize: 64, priority: 1, afStripes: 4000, afHash: 'sha256', areaOffset: AREA, areaSize: keyslotAreaSize(64), areaEncryption: 'aes-xts-plain64', areaKeySize: 64, kdf };
}

const kdfs: Kdf[] = [
  { type: 'pbkdf2', hash: 'sha256', iterations: 1000, salt: randomBytes(32) },
  { type: 'argon2id', time: 4, memory: 8192, cpus: 2, salt: randomBytes(32) },
];

test('store then open returns the volume key; wrong passphrase and damaged material do not', async () => {
  for (const kdf of kdfs) {
    const dev = new MemoryDevice(1 << 20);
    const key = randomBytes(64);
    const ks = keyslot(kdf);
    await storeKeyslot(dev, { areaOffset: AREA, areaSize: ks.areaSize, kdf }, key, Buffer.from('right'));
    assert.deepEqual(await openKeyslot(dev, ks, Buffer.from('right')), key, kdf.type);
    assert.notDeepEqual(await openKeyslot(dev, ks, Buffer.from('wrong')), key, kdf.type);
    const b = await dev.read(AREA + 12345, 1);
    b[0]! ^= 0x40;
    await dev.write(AREA + 12345, b);
    assert.notDeepEqual(await openKeyslot(dev, ks, Buffer.from('right')), key, `${kdf.type}: a damaged stripe changes the key`);
  }
});

test('a keyslot area past the end of the device is a header error, not a crash', async () => {
  const dev = new MemoryDevice(AREA + 4096);
  await assert.rejects(openKeyslot(dev, keyslot(kdfs[0]!), Buffer.from('x')), (e) => isNbdcryptError(e, 'EBADHDR') && /reaches past the end/.test(e.message));
});

test('the child-process derivation gives the same bytes as this process', async () => {
  const signal = new AbortController().signal;
  for (const kdf of kdfs) {
    for (const pass of [Buffer.from('pass\nwith newline\u0000'), Buffer.alloc(0)]) {
      assert.deepEqual(await deriveKeyAbortable(kdf, pass, 64, signal), await deriveKey(kdf, pass, 64), `${kdf.type}, ${pass.length}-byte passphrase`);
    }
  }
});

test('aborting a derivation of hours ends it with EINTR at once', async () => {
  const controller = new AbortController();
  const huge: Kdf = { type: 'argon2id', time: 4294967295, memory: 8192, cpus: 1, salt: randomBytes(32) };
  const p = deriveKeyAbortable(huge, Buffer.from('x'), 64, controller.signal);
  setTimeout(() => controller.abort(), 300);
  await assert.rejects(p, (e) => isNbdcryptError(e, 'EINTR') && /interrupted while deriving the key/.test(e.message));
  // An already aborted signal does not start anything.
  await assert.rejects(deriveKeyAbortable(kdfs[0]!, Buffer.from('x'), 64, controller.signal), (e) => isNbdcryptError(e, 'EINTR'));
});

test('keyslot areas in other ciphers: store then open under the area spec and key size; another block cipher gives another key', async () => {
  const kdf = kdfs[0]!;
  for (const [encryption, keySize] of [['serpent-xts-plain64', 32], ['twofish-cbc-essiv:sha256', 32], ['aes-cbc-plain64', 16], ['serpent-ecb', 24], ['twofish-xts-plain64', 48]] as const) {
    const dev = new MemoryDevice(1 << 20);
    const key = randomBytes(keySize);
    const ks: Keyslot = { ...keyslot(kdf), keySize, areaSize: keyslotAreaSize(keySize), areaEncryption: encryption, areaKeySize: keySize };
    await storeKeyslot(dev, { areaOffset: AREA, areaSize: ks.areaSize, kdf, encryption }, key, Buffer.from('right'));
    assert.deepEqual(await openKeyslot(dev, ks, Buffer.from('right')), key, encryption);
    // Opened as if it were another block cipher, the key comes out wrong (the digest rejects it).
    const other = encryption.replace(/^[a-z]+/, (c) => (c === 'serpent' ? 'twofish' : 'serpent'));
    assert.notDeepEqual(await openKeyslot(dev, { ...ks, areaEncryption: other }, Buffer.from('right')), key, `${encryption} read as ${other}`);
  }
});

test('a keyslot area cipher or key size nbdcrypt lacks is EBADHDR naming the keyslot and the spec', async () => {
  const dev = new MemoryDevice(1 << 20);
  for (const [areaEncryption, areaKeySize, named] of [['cast5-cbc-plain64', 16, "block cipher 'cast5'"], ['aes-xts-plain64', 48, 'a 384-bit key is not supported'], ['aes-cbc-essiv:sha1', 32, "ESSIV hash 'sha1'"]] as const) {
    const ks: Keyslot = { ...keyslot(kdfs[0]!), areaEncryption, areaKeySize };
    await assert.rejects(openKeyslot(dev, ks, Buffer.from('x')), (e) => isNbdcryptError(e, 'EBADHDR') && e.message.startsWith(`keyslot 0: area encryption ${areaEncryption} with a ${areaKeySize * 8}-bit key is not supported`) && e.message.includes(named));
  }
  await assert.rejects(storeKeyslot(dev, { areaOffset: AREA, areaSize: keyslotAreaSize(32), kdf: kdfs[0]!, encryption: 'serpent-xts-plain64' }, randomBytes(24), Buffer.from('x')), (e) => isNbdcryptError(e, 'EBADHDR') && /new keyslot: .*192-bit key is not supported/.test(e.message));
});
