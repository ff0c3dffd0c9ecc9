/**
 * The bounds on a header's KDF cost when unlocking: a keyslot or digest above them is refused
 * before any derivation runs (EBADHDR naming the keyslot and the cost), values at the bounds
 * and everything format writes pass, and with the override an abort still ends the unlock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { isNbdcryptError } from '../../src/errors.js';
import { ARGON2_MAX_WORK_KIB, PBKDF2_MAX_ITERATIONS, kdfCostIsReasonable } from '../../src/luks/kdf-cost-limits.js';
import { formatVolume } from '../../src/luks/format-volume.js';
import { openVolume } from '../../src/luks/open-volume.js';
import { addKey } from '../../src/luks/key-operations.js';
import { readHeaders, writeHeaders } from '../../src/luks/luks2-header.js';
import type { JsonObject } from '../../src/luks/luks2-json-fields.js';

const salt = Buffer.alloc(32);

test('the bounds: 2^26 KiB of argon2 work, 2^26 PBKDF2 iterations; cryptsetup defaults are far below', () => {
  assert.equal(kdfCostIsReasonable({ type: 'argon2id', time: 4, memory: 1048576, cpus: 4, salt }), true, "cryptsetup's default cost");
  assert.equal(kdfCostIsReasonable({ type: 'argon2id', time: 16, memory: 4194304, cpus: 4, salt }), true, '16 passes over 4 GiB');
  assert.equal(kdfCostIsReasonable({ type: 'argon2id', time: 17, memory: 4194304, cpus: 4, salt }), false);
  assert.equal(kdfCostIsReasonable({ type: 'argon2i', time: ARGON2_MAX_WORK_KIB / 8 + 1, memory: 8, cpus: 1, salt }), false);
  assert.equal(kdfCostIsReasonable({ type: 'pbkdf2', hash: 'sha256', iterations: PBKDF2_MAX_ITERATIONS, salt }), true);
  assert.equal(kdfCostIsReasonable({ type: 'pbkdf2', hash: 'sha256', iterations: PBKDF2_MAX_ITERATIONS + 1, salt }), false);
});

async function volumeWithTime(time: number): Promise<MemoryDevice> {
  const dev = new MemoryDevice(17 * 1024 * 1024);
  await formatVolume(dev, Buffer.from('pass'), { pbkdfMemoryKiB: 8192, pbkdfForceIterations: 4, pbkdfParallel: 1 });
  const c = (await readHeaders(dev)).chosen;
  const raw = JSON.parse(c.json) as { keyslots: Record<string, { kdf: JsonObject }> };
  raw.keyslots['0']!.kdf.time = time;
  await writeHeaders(dev, { ...c, seqid: c.seqid + 1n }, JSON.stringify(raw));
  return dev;
}

test('an unreasonable keyslot cost is refused before any derivation; the override runs it, and an abort stops it', async () => {
  const dev = await volumeWithTime(4294967295);
  await assert.rejects(
    openVolume(dev, Buffer.from('pass')),
    (e) => isNbdcryptError(e, 'EBADHDR') && /^keyslot 0 asks for an unreasonable key derivation cost \(argon2id with time 4294967295 × memory 8192 KiB; .*--allow-costly-kdf; no data was changed$/.test(e.message),
  );
  const controller = new AbortController();
  const opening = openVolume(dev, Buffer.from('pass'), { allowCostlyKdf: true, signal: controller.signal });
  setTimeout(() => controller.abort(), 300);
  await assert.rejects(opening, (e) => isNbdcryptError(e, 'EINTR'));
});

test('a volume as format writes it opens through the abortable path', async () => {
  const dev = await volumeWithTime(4);
  const v = await openVolume(dev, Buffer.from('pass'), { signal: new AbortController().signal });
  assert.equal(v.keyslot, 0);
  v.volumeKey.fill(0);
});

test('a costly keyslot next to a reasonable one: the reasonable one still opens; otherwise the cost is the error', async () => {
  const dev = new MemoryDevice(17 * 1024 * 1024);
  const cheap = { pbkdfMemoryKiB: 8192, pbkdfForceIterations: 4, pbkdfParallel: 1 };
  await formatVolume(dev, Buffer.from('zero'), cheap);
  assert.equal(await addKey(dev, Buffer.from('zero'), Buffer.from('one'), cheap), 1);
  const c = (await readHeaders(dev)).chosen;
  const raw = JSON.parse(c.json) as { keyslots: Record<string, { kdf: JsonObject }> };
  raw.keyslots['1']!.kdf.time = 4294967295;
  await writeHeaders(dev, { ...c, seqid: c.seqid + 1n }, JSON.stringify(raw));
  const v = await openVolume(dev, Buffer.from('zero'));
  assert.equal(v.keyslot, 0);
  v.volumeKey.fill(0);
  await assert.rejects(openVolume(dev, Buffer.from('one')), (e) => isNbdcryptError(e, 'EBADHDR') && /^keyslot 1 asks for an unreasonable key derivation cost/.test(e.message));
});
