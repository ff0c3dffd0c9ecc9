/**
 * Cipher specs as cryptsetup writes them: LUKS2 encryption strings and LUKS1 name + mode
 * pairs parse to the same spec; every unsupported cipher, mode, IV generator, ESSIV hash or
 * key size is an EBADHDR error naming it (never a cipher that would decrypt wrongly); and
 * aes-xts-plain64 with a 512-bit key still gets the AES-XTS engines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { checkKeySize, keySizes, parseCipherSpec, parseLuks1Cipher } from '../../src/crypt/cipher-spec.js';
import { createSectorCipher } from '../../src/crypt/sector-cipher.js';
import { isNbdcryptError } from '../../src/errors.js';

test('LUKS2 encryption strings parse to cipher, mode, IV generator and canonical name', () => {
  assert.deepEqual(parseCipherSpec('aes-xts-plain64'), { cipher: 'aes', mode: 'xts', iv: 'plain64', name: 'aes-xts-plain64' });
  assert.deepEqual(parseCipherSpec('twofish-cbc-essiv:sha256'), { cipher: 'twofish', mode: 'cbc', iv: 'essiv', ivHash: 'sha256', name: 'twofish-cbc-essiv:sha256' });
  assert.deepEqual(parseCipherSpec('serpent-xts-plain64'), { cipher: 'serpent', mode: 'xts', iv: 'plain64', name: 'serpent-xts-plain64' });
  assert.deepEqual(parseCipherSpec('aes-cbc-plain'), { cipher: 'aes', mode: 'cbc', iv: 'plain', name: 'aes-cbc-plain' });
  assert.deepEqual(parseCipherSpec('serpent-cbc-plain64'), { cipher: 'serpent', mode: 'cbc', iv: 'plain64', name: 'serpent-cbc-plain64' });
  assert.deepEqual(parseCipherSpec('twofish-ecb'), { cipher: 'twofish', mode: 'ecb', iv: 'none', name: 'twofish-ecb' });
  // cryptsetup reads a bare cipher name as CIPHER-cbc-plain.
  assert.deepEqual(parseCipherSpec('aes'), { cipher: 'aes', mode: 'cbc', iv: 'plain', name: 'aes-cbc-plain' });
});

test('LUKS1 cipher name + mode give the same spec as the joined LUKS2 string', () => {
  for (const [name, mode] of [
    ['twofish', 'cbc-essiv:sha256'],
    ['aes', 'xts-plain64'],
    ['serpent', 'cbc-plain'],
    ['aes', 'ecb'],
  ] as const) {
    assert.deepEqual(parseLuks1Cipher(name, mode), parseCipherSpec(`${name}-${mode}`));
  }
});

test('an unsupported part is an EBADHDR error that names it', () => {
  const cases: [() => unknown, RegExp][] = [
    [() => parseCipherSpec('cast5-cbc-plain'), /block cipher 'cast5'/],
    [() => parseCipherSpec('aes-lrw-benbi'), /mode 'lrw'/],
    [() => parseCipherSpec('aes-cbc-benbi'), /IV generator 'benbi'/],
    [() => parseCipherSpec('aes-cbc-lmk'), /IV generator 'lmk'/],
    [() => parseCipherSpec('aes-xts-plain64be'), /IV generator 'plain64be'/],
    [() => parseCipherSpec('twofish-cbc-essiv:sha1'), /ESSIV hash 'sha1'/],
    [() => parseCipherSpec('aes-cbc'), /without an IV generator/],
    [() => parseCipherSpec('aes-ecb-plain64'), /IV 'plain64' with ecb/],
    [() => parseCipherSpec('capi:xts(aes)-plain64'), /kernel crypto API/],
    [() => parseLuks1Cipher('cipher_null', 'ecb'), /block cipher 'cipher_null'/],
    [() => parseLuks1Cipher('aes-xts', 'plain64'), /block cipher 'aes-xts'/],
  ];
  for (const [f, re] of cases) {
    assert.throws(f, (e: unknown) => isNbdcryptError(e, 'EBADHDR') && re.test(e.message) && /nbdcrypt reads/.test(e.message), String(re));
  }
});

test('key sizes: XTS takes two keys (AES 128/256 each, Twofish/Serpent 128/192/256), CBC and ECB one', () => {
  assert.deepEqual(keySizes(parseCipherSpec('aes-xts-plain64')), [32, 64]);
  assert.deepEqual(keySizes(parseCipherSpec('twofish-xts-plain64')), [32, 48, 64]);
  assert.deepEqual(keySizes(parseCipherSpec('serpent-cbc-essiv:sha256')), [16, 24, 32]);
  assert.deepEqual(keySizes(parseCipherSpec('aes-ecb')), [16, 24, 32]);
  checkKeySize(parseCipherSpec('twofish-cbc-essiv:sha256'), 32);
  assert.throws(
    () => checkKeySize(parseCipherSpec('aes-xts-plain64'), 48),
    (e: unknown) => isNbdcryptError(e, 'EBADHDR') && /aes-xts-plain64: a 384-bit key is not supported; it takes 256, 512 bits/.test(e.message),
  );
  assert.throws(() => createSectorCipher('serpent-cbc-plain64', randomBytes(64), 'native'), (e: unknown) => isNbdcryptError(e, 'EBADHDR') && /512-bit key/.test(e.message));
  for (const engine of ['native', 'node', 'reference'] as const) {
    assert.throws(() => createSectorCipher('aes-xts-plain', Buffer.alloc(32, 7), engine), { name: 'RangeError', message: /halves of an XTS key must differ/ });
  }
});

test('aes-xts-plain64 with a 512-bit key keeps the AES-XTS engines; other specs get the sector engines', () => {
  const key = randomBytes(64);
  for (const engine of ['native', 'node', 'reference'] as const) {
    const c = createSectorCipher('aes-xts-plain64', key, engine);
    assert.equal(c.engine, engine);
    assert.equal(c.syncMax, undefined, 'the AES-XTS engines leave the event-loop budget to EncryptedDevice');
    c.destroy();
  }
  const t = createSectorCipher('twofish-xts-plain64', key, 'native');
  assert.equal(t.engine, 'native');
  assert.ok(t.syncMax !== undefined && t.syncMax < 1024 * 1024, 'a slower cipher states a smaller event-loop budget');
  t.destroy();
});
