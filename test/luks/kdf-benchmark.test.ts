/**
 * KDF cost selection: the benchmark path (short --iter-time so the suite stays fast) yields
 * parameters inside cryptsetup's limits (time >= 4, memory <= min(1 GiB, free RAM / 2),
 * threads <= min(4, CPUs)); pinned values are used as given; bad values are usage errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { chooseKdf, maxArgonMemoryKiB } from '../../src/luks/kdf-benchmark.js';
import { isNbdcryptError } from '../../src/errors.js';

test('argon2id benchmark to a short --iter-time stays within the limits', async () => {
  const k = await chooseKdf({ iterTimeMs: 250 });
  assert.equal(k.type, 'argon2id');
  if (k.type !== 'argon2id') return;
  assert.ok(k.time >= 4, `time ${k.time}`);
  assert.ok(k.memory >= 32 && k.memory <= maxArgonMemoryKiB() && k.memory <= 1048576, `memory ${k.memory}`);
  assert.equal(k.cpus, Math.min(4, availableParallelism()));
  assert.equal(k.salt.length, 32);
});

test('pbkdf2 benchmark gives at least 1000 iterations; pinned values are kept', async () => {
  const p = await chooseKdf({ pbkdf: 'pbkdf2', iterTimeMs: 50 });
  assert.ok(p.type === 'pbkdf2' && p.iterations >= 1000 && p.hash === 'sha256');
  assert.deepEqual({ ...(await chooseKdf({ pbkdf: 'pbkdf2', forceIterations: 1234 })), salt: null }, { type: 'pbkdf2', hash: 'sha256', iterations: 1234, salt: null });
  assert.deepEqual({ ...(await chooseKdf({ memoryKiB: 65536, parallel: 1, forceIterations: 5 })), salt: null }, { type: 'argon2id', time: 5, memory: 65536, cpus: 1, salt: null });
});

test('out-of-range KDF options are usage errors', async () => {
  for (const c of [{ parallel: 5 }, { memoryKiB: 8 }, { forceIterations: 3 }, { pbkdf: 'pbkdf2' as const, forceIterations: 999 }, { iterTimeMs: 0 }]) {
    await assert.rejects(chooseKdf(c), (e) => isNbdcryptError(e, 'EUSAGE'), JSON.stringify(c));
  }
});
