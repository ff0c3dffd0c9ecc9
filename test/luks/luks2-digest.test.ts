/**
 * The LUKS2 pbkdf2 digest against cryptsetup as the oracle: for a header made by
 * `cryptsetup luksFormat` on a small image file, the volume key cryptsetup prints
 * (--dump-volume-key) matches the stored digest by our computation, and nothing else does;
 * a digest we create is one cryptsetup's layout expects (32-byte salt, 32-byte sha256).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from '../../peers/tools.js';
import * as cs from '../../peers/cryptsetup.js';
import { computeDigest, createDigest, verifyDigest } from '../../src/luks/luks2-digest.js';
import type { Digest } from '../../src/luks/luks2-metadata.js';

let dir: { path: string; remove: () => void };
before(() => {
  cs.cryptsetup();
  dir = scratchDir('nbdcrypt-digest-');
});
after(() => dir.remove());

interface DigestJson {
  type: string;
  keyslots: string[];
  segments: string[];
  hash: string;
  iterations: number;
  salt: string;
  digest: string;
}

function fromJson(id: number, d: DigestJson): Digest {
  return { id, type: d.type, keyslots: d.keyslots.map(Number), segments: d.segments.map(Number), hash: d.hash, iterations: d.iterations, salt: Buffer.from(d.salt, 'base64'), digest: Buffer.from(d.digest, 'base64') };
}

test("cryptsetup's volume key matches its digest by our PBKDF2; a changed key does not", async () => {
  for (const pbkdf of ['pbkdf2', 'argon2id'] as const) {
    const img = join(dir.path, `${pbkdf}.img`);
    writeFileSync(img, '');
    truncateSync(img, 17 * 1024 * 1024);
    cs.luksFormat(img, 'pass', { pbkdf });
    const key = cs.volumeKey(img, 'pass');
    assert.equal(key.length, 64);
    const json = cs.luksDumpJson(img) as { digests: Record<string, DigestJson> };
    const d = fromJson(0, json.digests['0']!);
    assert.equal(d.hash, 'sha256');
    assert.ok(d.iterations >= 1000);
    assert.deepEqual(await computeDigest(key, d.salt, d.hash, d.iterations, d.digest.length), d.digest, pbkdf);
    assert.equal(await verifyDigest(d, key), true);
    assert.equal(await verifyDigest(d, key, new AbortController().signal), true, 'the same through the child process');
    const other = Buffer.from(key);
    other[63]! ^= 1;
    assert.equal(await verifyDigest(d, other), false);
    assert.equal(await verifyDigest({ ...d, hash: 'no-such-hash' }, key), false);
  }
});

test('a digest we create verifies and has the layout cryptsetup writes', async () => {
  const key = Buffer.alloc(64, 7);
  const c = await createDigest(key, 1000);
  assert.equal(c.salt.length, 32);
  assert.equal(c.digest.length, 32);
  const d: Digest = { id: 0, type: 'pbkdf2', keyslots: [0], segments: [0], hash: 'sha256', iterations: c.iterations, salt: c.salt, digest: c.digest };
  assert.equal(await verifyDigest(d, key), true);
  assert.equal(await verifyDigest(d, Buffer.alloc(64, 8)), false);
});
