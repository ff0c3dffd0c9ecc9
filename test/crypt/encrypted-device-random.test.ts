/**
 * Randomized concurrent test of EncryptedDevice against a plaintext model: 100,000 mixed
 * reads, writes and zero-writes of random sizes and byte alignments on a small device (so
 * requests overlap all the time, many sharing partial sectors), up to 64 in flight, with the
 * lower device completing its calls out of order. Overlapping requests take effect in arrival
 * order, so the model applies each write when it is issued and each read must return exactly
 * the model's bytes at issue time. At the end the ciphertext itself is checked with node:crypto
 * (aes-xts-plain64) or the reference engine (the other ciphers, which run the same device code
 * with their own event-loop budget).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { EncryptedDevice } from '../../src/crypt/encrypted-device.js';
import type { XtsEngineName } from '../../src/crypt/xts-cipher.js';
import { createSectorCipher } from '../../src/crypt/sector-cipher.js';
import { keySizes, parseCipherSpec } from '../../src/crypt/cipher-spec.js';
import { RecordingDevice } from './recording-device.js';

/** Small deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function runRandom(opts: { ops: number; sectorSize: number; sectors: number; engine: XtsEngineName; seed: number; lendViews?: boolean; cipher?: string }): Promise<void> {
  const { sectorSize: ss, sectors } = opts;
  const rnd = prng(opts.seed);
  const dataOffset = 3 * 4096;
  const lower = new RecordingDevice(dataOffset + sectors * ss + ss - 1); // a partial sector at the end is not part of the device
  lower.record = false;
  lower.jitter = 3;
  lower.lendViews = opts.lendViews ?? false;
  const spec = parseCipherSpec(opts.cipher ?? 'aes-xts-plain64');
  const key = randomBytes(keySizes(spec).at(-1)!);
  const dev = new EncryptedDevice(lower, { key, dataOffset, sectorSize: ss, ivTweak: 5, engine: opts.engine, cipher: spec });
  assert.equal(dev.size, sectors * ss);
  const size = dev.size;
  // A fresh lower device holds zero ciphertext, whose plaintext is noise: start from a known one.
  const model = randomBytes(size);
  await dev.write(0, model);

  const pick = (): [number, number] => {
    const r = rnd();
    let len: number;
    if (r < 0.3) len = 1 + Math.floor(rnd() * 64); // tiny
    else if (r < 0.6) len = ss * (1 + Math.floor(rnd() * 4)); // whole sectors
    else if (r < 0.9) len = 1 + Math.floor(rnd() * 3 * ss); // around a sector
    else len = 1 + Math.floor(rnd() * 16 * ss); // larger
    len = Math.min(len, size);
    let off = Math.floor(rnd() * (size - len + 1));
    if (rnd() < 0.4) off = Math.min(Math.floor(off / ss) * ss, size - len); // often aligned
    return [off, len];
  };

  // Up to 64 requests in flight: a counter and one waiter, not Promise.race over all of them.
  let inflight = 0;
  let wake: (() => void) | undefined;
  const done = (): void => {
    inflight--;
    wake?.();
    wake = undefined;
  };
  let failures = 0;
  let firstFailure = '';
  let reads = 0;
  for (let i = 0; i < opts.ops; i++) {
    const [off, len] = pick();
    const kind = rnd();
    let p: Promise<void>;
    if (kind < 0.45) {
      const expect = Buffer.from(model.subarray(off, off + len));
      reads++;
      p = dev.read(off, len).then((got) => {
        if (!got.equals(expect)) {
          failures++;
          firstFailure ||= `op ${i}: read(${off}, ${len}) differs from the model`;
        }
      });
    } else if (kind < 0.93) {
      const d = randomBytes(len);
      d.copy(model, off);
      // Half the writes give their buffer away, as the NBD server does (encrypted in place).
      p = dev.write(off, d, rnd() < 0.1, rnd() < 0.5);
    } else if (kind < 0.98) {
      model.fill(0, off, off + len);
      p = dev.writeZeroes(off, len);
    } else {
      p = dev.flush();
    }
    inflight++;
    p.then(done, (e: unknown) => {
      failures++;
      firstFailure ||= `op ${i}: ${String(e)}`;
      done();
    });
    while (inflight >= 64) await new Promise<void>((r) => (wake = r));
  }
  while (inflight > 0) await new Promise<void>((r) => (wake = r));
  assert.equal(failures, 0, `${failures} failures (${reads} reads); first: ${firstFailure} (seed ${opts.seed})`);
  assert.ok((await dev.read(0, size)).equals(model), 'final contents equal the model');
  // With views lent, aligned reads decrypt straight out of the lower device's memory.
  if (opts.lendViews) assert.ok(lower.peeks > reads / 4, `only ${lower.peeks} of ${reads} reads used a lent view`);

  const ct = await lower.mem.read(dataOffset, size);
  if (spec.name !== 'aes-xts-plain64') {
    const ref = createSectorCipher(spec, key, 'reference');
    ref.decrypt(ct, 5, ss);
    assert.ok(ct.equals(model), `the reference engine decrypts the stored ${spec.name} ciphertext to the model`);
    await dev.close();
    return;
  }
  // The lower device holds aes-xts-plain64 ciphertext of the model, sector by sector.
  for (let s = 0; s < sectors; s++) {
    const iv = Buffer.alloc(16);
    iv.writeUInt32LE((s * ss) / 512 + 5, 0);
    const d = createDecipheriv('aes-256-xts', key, iv);
    const pt = Buffer.concat([d.update(ct.subarray(s * ss, (s + 1) * ss)), d.final()]);
    assert.ok(pt.equals(model.subarray(s * ss, (s + 1) * ss)), `ciphertext of sector ${s}`);
  }
  await dev.close();
}

const seed = Number(process.env.NBDCRYPT_TEST_SEED ?? Date.now() % 1e9);

test(`100,000 concurrent random ops, 4096-byte sectors, native engine (seed ${seed})`, async () => {
  await runRandom({ ops: 100_000, sectorSize: 4096, sectors: 48, engine: 'native', seed });
});

test(`50,000 concurrent random ops, 4096-byte sectors, native engine, lower device lends views (seed ${seed + 3})`, async () => {
  await runRandom({ ops: 50_000, sectorSize: 4096, sectors: 48, engine: 'native', seed: seed + 3, lendViews: true });
});

test(`30,000 concurrent random ops, 512-byte sectors, native engine, lower device lends views (seed ${seed + 1})`, async () => {
  await runRandom({ ops: 30_000, sectorSize: 512, sectors: 256, engine: 'native', seed: seed + 1, lendViews: true });
});

test(`10,000 concurrent random ops, 4096-byte sectors, node engine (seed ${seed + 2})`, async () => {
  await runRandom({ ops: 10_000, sectorSize: 4096, sectors: 48, engine: 'node', seed: seed + 2 });
});

test(`20,000 concurrent random ops, 512-byte sectors, twofish-cbc-essiv:sha256, native engine, lent views (seed ${seed + 4})`, async () => {
  await runRandom({ ops: 20_000, sectorSize: 512, sectors: 256, engine: 'native', seed: seed + 4, lendViews: true, cipher: 'twofish-cbc-essiv:sha256' });
});

test(`20,000 concurrent random ops, 4096-byte sectors, serpent-xts-plain64, native engine (seed ${seed + 5})`, async () => {
  await runRandom({ ops: 20_000, sectorSize: 4096, sectors: 48, engine: 'native', seed: seed + 5, cipher: 'serpent-xts-plain64' });
});

test(`3,000 concurrent random ops, 4096-byte sectors, aes-cbc-plain64 and twofish-xts-plain64, node engine (seed ${seed + 6})`, async () => {
  await runRandom({ ops: 3_000, sectorSize: 4096, sectors: 48, engine: 'node', seed: seed + 6, cipher: 'aes-cbc-plain64' });
  await runRandom({ ops: 3_000, sectorSize: 4096, sectors: 48, engine: 'node', seed: seed + 7, cipher: 'twofish-xts-plain64' });
});
