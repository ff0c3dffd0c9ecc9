/**
 * AF splitter: split/merge round trips for key sizes that are and are not multiples of the
 * hash size, every stripe matters (one flipped bit gives a different key), and the material
 * is random (two splits of the same key differ). Cross-checked against cryptsetup in
 * test/integration/luks2-cryptsetup.test.ts, where real keyslots are merged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afMerge, afSplit, AF_STRIPES } from '../../src/luks/af.js';

test('split then merge returns the key (sha256 and sha1, odd key sizes)', () => {
  for (const [size, hash] of [[64, 'sha256'], [32, 'sha256'], [20, 'sha1'], [100, 'sha256'], [1, 'sha256']] as const) {
    const key = randomBytes(size);
    const m = afSplit(key, hash);
    assert.equal(m.length, size * AF_STRIPES);
    assert.deepEqual(afMerge(m, size, hash), key);
    assert.notDeepEqual(afSplit(key, hash), m, 'split material is random');
  }
});

test('every stripe matters', () => {
  const key = randomBytes(64);
  const m = afSplit(key);
  for (const stripe of [0, 1, 1999, 3998, 3999]) {
    const bad = Buffer.from(m);
    bad[stripe * 64 + 5]! ^= 1;
    assert.notDeepEqual(afMerge(bad, 64), key, `stripe ${stripe}`);
  }
  assert.throws(() => afMerge(m.subarray(1), 64), RangeError);
});
