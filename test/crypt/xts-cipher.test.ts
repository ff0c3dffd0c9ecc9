/**
 * XtsCipher on every engine against IEEE 1619 XTS-AES-256 vectors 10-14 (sync and async,
 * both directions, also as part of a larger buffer at sector sizes 512..4096), plus the API
 * contract: argument errors name the argument, duplicated-key keys are refused, destroy()
 * makes later calls fail, the native addon loads here (npm install built it) and its async
 * path survives many concurrent calls on one key. Spec: IEEE Std 1619-2007 Annex B.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createXtsCipher, defaultEngine, type XtsEngineName } from '../../src/crypt/xts-cipher.js';
import { loadNative, nativeLoadError } from '../../src/native-addon.js';
import { isNbdcryptError } from '../../src/errors.js';
import { KEY1, KEY2, plaintext, vectors } from './ieee1619-vectors.js';

const engines: XtsEngineName[] = ['native', 'node', 'reference'];
const key = Buffer.from(KEY1 + KEY2, 'hex');

test('the native addon loads in this checkout (npm install built it) and is the default engine', () => {
  assert.equal(nativeLoadError(), undefined);
  assert.ok(loadNative());
  if (process.env.NBDCRYPT_ENGINE === undefined) assert.equal(defaultEngine(), 'native');
});

for (const engine of engines) {
  test(`${engine}: IEEE 1619 vectors 10-14, sync and async, encrypt and decrypt`, async () => {
    const c = createXtsCipher(key, engine);
    assert.equal(c.engine, engine);
    for (const v of vectors) {
      const ct = Buffer.from(v.ct, 'hex');
      const a = plaintext();
      c.encrypt(a, v.sector, 512);
      assert.equal(a.toString('hex'), v.ct, `vector ${v.n} encrypt`);
      c.decrypt(a, v.sector, 512);
      assert.deepEqual(a, plaintext(), `vector ${v.n} decrypt`);
      const b = plaintext();
      await c.encryptAsync(b, v.sector, 512);
      assert.deepEqual(b, ct, `vector ${v.n} encryptAsync`);
      await c.decryptAsync(b, v.sector, 512);
      assert.deepEqual(b, plaintext(), `vector ${v.n} decryptAsync`);
    }
    c.destroy();
  });

  test(`${engine}: the vectors as sector i of a longer buffer (tweak = first + i·size/512)`, () => {
    const c = createXtsCipher(key, engine);
    // Vector 10 sits at 512-byte sector 255: as the 3rd unit of a 512-byte buffer from 253.
    const buf = Buffer.concat([randomBytes(1024), plaintext(), randomBytes(512)]);
    c.encrypt(buf, 253, 512);
    assert.equal(buf.subarray(1024, 1536).toString('hex'), vectors[0]!.ct);
    c.destroy();
  });

  test(`${engine}: 4096-byte units are one XTS data unit with tweak 8·n (LUKS2 plain64)`, () => {
    const c = createXtsCipher(key, engine);
    const p = randomBytes(3 * 4096);
    const buf = Buffer.from(p);
    c.encrypt(buf, 80, 4096);
    for (let i = 0; i < 3; i++) {
      const iv = Buffer.alloc(16);
      iv.writeUInt32LE(80 + 8 * i, 0);
      const e = createCipheriv('aes-256-xts', key, iv);
      assert.deepEqual(buf.subarray(i * 4096, (i + 1) * 4096), Buffer.concat([e.update(p.subarray(i * 4096, (i + 1) * 4096)), e.final()]));
    }
    c.destroy();
  });

  test(`${engine}: argument errors are TypeError/RangeError naming the argument`, async () => {
    const c = createXtsCipher(key, engine);
    const buf = Buffer.alloc(1024);
    assert.throws(() => c.encrypt('x' as unknown as Buffer, 0, 512), { name: 'TypeError', message: /buf/ });
    assert.throws(() => c.encrypt(Buffer.alloc(1000), 0, 512), { name: 'RangeError', message: /buf length/ });
    assert.throws(() => c.encrypt(buf, -1, 512), { name: 'RangeError', message: /firstSector/ });
    assert.throws(() => c.encrypt(buf, 1.5, 512), { name: 'RangeError', message: /firstSector/ });
    assert.throws(() => c.encrypt(buf, 2 ** 53, 512), { name: 'RangeError', message: /firstSector/ });
    assert.throws(() => c.encrypt(buf, '0' as unknown as number, 512), { name: 'TypeError', message: /firstSector/ });
    assert.throws(() => c.decrypt(buf, 0, 768), { name: 'RangeError', message: /sectorSize/ });
    assert.throws(() => c.decrypt(buf, 0, 256), { name: 'RangeError', message: /sectorSize/ });
    assert.throws(() => c.decrypt(Buffer.alloc(8192), 0, 8192), { name: 'RangeError', message: /sectorSize/ });
    await assert.rejects(c.encryptAsync(buf, -1, 512), { name: 'RangeError', message: /firstSector/ });
    c.encrypt(Buffer.alloc(0), 0, 512); // empty is fine
    c.destroy();
    assert.throws(() => c.encrypt(buf, 0, 512), (e) => isNbdcryptError(e, 'ECLOSED'));
    await assert.rejects(c.decryptAsync(buf, 0, 512), (e) => isNbdcryptError(e, 'ECLOSED'));
  });

  test(`${engine}: keys are 64 bytes with different halves`, () => {
    assert.throws(() => createXtsCipher(Buffer.alloc(32, 1), engine), { name: 'RangeError', message: /64 bytes/ });
    assert.throws(() => createXtsCipher('k' as unknown as Buffer, engine), { name: 'TypeError', message: /key/ });
    const dup = Buffer.concat([Buffer.alloc(32, 7), Buffer.alloc(32, 7)]);
    assert.throws(() => createXtsCipher(dup, engine), { name: 'RangeError', message: /halves .* must differ/ });
  });

  test(`${engine}: the key is copied (changing the caller's buffer later has no effect)`, () => {
    const k = Buffer.from(key);
    const c = createXtsCipher(k, engine);
    k.fill(0);
    const a = plaintext();
    c.encrypt(a, 255, 512);
    assert.equal(a.toString('hex'), vectors[0]!.ct);
    c.destroy();
  });
}

test('native: 200 concurrent async calls on one key agree with the node engine', async () => {
  const n = createXtsCipher(key, 'native');
  const ref = createXtsCipher(key, 'node');
  const jobs = Array.from({ length: 200 }, (_, i) => {
    const ss = 512 << (i % 4);
    const p = randomBytes(ss * (1 + (i % 17)));
    return { p, ss, first: i * 1000, buf: Buffer.from(p) };
  });
  await Promise.all(jobs.map((j, i) => (i % 2 ? n.encryptAsync(j.buf, j.first, j.ss) : Promise.resolve(n.encrypt(j.buf, j.first, j.ss)))));
  for (const j of jobs) {
    const e = Buffer.from(j.p);
    ref.encrypt(e, j.first, j.ss);
    assert.deepEqual(j.buf, e);
  }
  await Promise.all(jobs.map((j) => n.decryptAsync(j.buf, j.first, j.ss)));
  for (const j of jobs) assert.deepEqual(j.buf, j.p);
  n.destroy();
  ref.destroy();
});

test('native: destroy() while async calls are in flight neither crashes nor corrupts', async () => {
  const n = createXtsCipher(key, 'native');
  const bufs = Array.from({ length: 32 }, () => randomBytes(1 << 20));
  const settled = Promise.allSettled(bufs.map((b, i) => n.encryptAsync(b, i, 4096)));
  n.destroy();
  const results = await settled;
  // Calls already queued finish with their context; none may hang.
  assert.equal(results.length, 32);
  assert.throws(() => n.encrypt(Buffer.alloc(512), 0, 512), (e) => isNbdcryptError(e, 'ECLOSED'));
});

test('setIoFlusher() returns undefined on success or one "ENAME: why" line (run in a child)', () => {
  const mod = new URL('../../src/native-addon.js', import.meta.url).href;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { setIoFlusher } from ${JSON.stringify(mod)}; console.log(JSON.stringify(setIoFlusher() ?? null));`], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as string | null;
  if (out !== null) assert.match(out, /^E[A-Z]+: prctl\(PR_SET_IO_FLUSHER\) failed: [^\n]+$/);
});
