/**
 * The LUKS hash names: node:crypto and the @noble/hashes fallback agree for every hash and for
 * PBKDF2 (so a LUKS1 ripemd160 volume opens on an OpenSSL without ripemd160), digest lengths
 * are right, and a hash nbdcrypt lacks is an EBADHDR error naming it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, pbkdf2Sync } from 'node:crypto';
import { isNbdcryptError } from '../../src/errors.js';
import { hashDigest, hashLength, isSupportedHash, pbkdf2, useNobleHashesOnly } from '../../src/luks/hash-functions.js';

const names: Array<[string, number]> = [
  ['sha1', 20], ['sha224', 28], ['sha256', 32], ['sha384', 48], ['sha512', 64], ['ripemd160', 20],
  ['sha3-224', 28], ['sha3-256', 32], ['sha3-384', 48], ['sha3-512', 64], ['blake2b-512', 64], ['blake2s-256', 32],
];

test('every hash: node:crypto and @noble/hashes give the same digest and PBKDF2', async () => {
  const a = Buffer.from('first part ');
  const b = Buffer.from('and the second, longer than one block? '.repeat(5));
  for (const [name, len] of names) {
    assert.equal(hashLength(name), len, name);
    const viaNode = hashDigest(name, a, b);
    const viaNodePbkdf2 = await pbkdf2(name, a, b, 1000, 70);
    useNobleHashesOnly(true);
    try {
      assert.deepEqual(hashDigest(name, a, b), viaNode, name);
      assert.deepEqual(await pbkdf2(name, a, b, 1000, 70), viaNodePbkdf2, `pbkdf2-${name}`);
    } finally {
      useNobleHashesOnly(false);
    }
    assert.equal(viaNode.length, len);
  }
  // And against node:crypto called directly, for the names OpenSSL spells the same.
  assert.deepEqual(hashDigest('ripemd160', a, b), createHash('ripemd160').update(Buffer.concat([a, b])).digest());
  assert.deepEqual(await pbkdf2('sha1', a, b, 1000, 20), pbkdf2Sync(a, b, 1000, 20, 'sha1'));
});

test('a hash nbdcrypt lacks is EBADHDR naming it', () => {
  for (const name of ['whirlpool', 'stribog512', 'md5', 'SHA256']) {
    assert.equal(isSupportedHash(name), false, name);
    assert.throws(() => hashLength(name), (e) => isNbdcryptError(e, 'EBADHDR') && e.message.includes(`'${name}'`));
  }
});
