/**
 * Every cipher × mode × IV generator × key size on every engine: the native addon, the node
 * engine and the reference engine give the same bytes for random data at random sector
 * numbers (past 2^32, where plain and plain64 part), sync and async, in place and one-pass
 * (cryptInto), and each decrypts what it encrypted. An oracle written here from the mode
 * definitions, over the cipher's own ECB, checks the IV rules and the chaining: plain64 =
 * LE64 of the 512-byte sector number, plain = its low 32 bits, essiv = that block encrypted
 * under sha256(volume key); a 4096-byte sector is one unit whose IV is the number of its first
 * 512 bytes; CBC chains within a unit, XTS multiplies the tweak by α per block. The generic
 * XTS code is also checked against IEEE 1619 XTS-AES-256 vectors 10-14.
 * Spec: IEEE Std 1619-2007 Annex B; NIST SP 800-38A; dm-crypt.rst.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { keySizes, parseCipherSpec, type CipherSpec } from '../../src/crypt/cipher-spec.js';
import { createSectorCipher, type EngineName, type SectorCipher } from '../../src/crypt/sector-cipher.js';
import { createNativeSectorEngine } from '../../src/crypt/native-sector-engine.js';
import { createJsSectorEngine } from '../../src/crypt/js-sector-engine.js';
import { blockUnits } from '../../src/crypt/sector-modes.js';
import { cryptInto, type CryptInto } from '../../src/crypt/native-engine.js';
import { KEY1, KEY2, plaintext, vectors } from './ieee1619-vectors.js';

const engines: EngineName[] = ['native', 'node', 'reference'];
const modes = ['xts-plain64', 'xts-plain', 'xts-essiv:sha256', 'cbc-essiv:sha256', 'cbc-plain64', 'cbc-plain', 'ecb'];

/** One block through the cipher's ECB on the native engine (the oracle's only primitive). */
function ecbBlock(name: string, key: Buffer, block: Buffer, enc: boolean): Buffer {
  const c = createSectorCipher(`${name}-ecb`, key, 'native');
  const buf = Buffer.alloc(512);
  block.copy(buf);
  if (enc) c.encrypt(buf, 0, 512);
  else c.decrypt(buf, 0, 512);
  c.destroy();
  return buf.subarray(0, 16);
}

function xor(a: Buffer, b: Buffer): Buffer {
  return Buffer.from(a.map((x, i) => x ^ b[i]!));
}

function mulAlpha(t: Buffer): Buffer {
  const out = Buffer.alloc(16);
  let carry = 0;
  for (let i = 0; i < 16; i++) {
    out[i] = ((t[i]! << 1) | carry) & 0xff;
    carry = t[i]! >> 7;
  }
  if (carry) out[0]! ^= 0x87;
  return out;
}

/** The IV of 512-byte sector n as dm-crypt defines it. */
function oracleIv(spec: CipherSpec, key: Buffer, n: number): Buffer {
  const iv = Buffer.alloc(16);
  if (spec.iv === 'plain') iv.writeUInt32LE(n % 2 ** 32, 0);
  else iv.writeBigUInt64LE(BigInt(n), 0);
  if (spec.iv === 'essiv') return ecbBlock(spec.cipher, createHash('sha256').update(key).digest(), iv, true);
  return iv;
}

/** Decrypts ciphertext sector by sector from the definitions, with ECB as the only primitive. */
function oracleDecrypt(spec: CipherSpec, key: Buffer, ct: Buffer, first: number, ss: number): Buffer {
  const out = Buffer.alloc(ct.length);
  const half = spec.mode === 'xts' ? key.length / 2 : key.length;
  const k1 = key.subarray(0, half);
  for (let s = 0; s < ct.length / ss; s++) {
    const iv = spec.mode === 'ecb' ? Buffer.alloc(16) : oracleIv(spec, key, first + (s * ss) / 512);
    let t = spec.mode === 'xts' ? ecbBlock(spec.cipher, key.subarray(half), iv, true) : iv;
    for (let b = 0; b < ss / 16; b++) {
      const at = s * ss + b * 16;
      const c = ct.subarray(at, at + 16);
      let p: Buffer;
      if (spec.mode === 'xts') {
        p = xor(ecbBlock(spec.cipher, k1, xor(c, t), false), t);
        t = mulAlpha(t);
      } else if (spec.mode === 'cbc') {
        p = xor(ecbBlock(spec.cipher, k1, c, false), t);
        t = Buffer.from(c);
      } else p = ecbBlock(spec.cipher, k1, c, false);
      p.copy(out, at);
    }
  }
  return out;
}

function randomFirst(): number {
  // Often just below 2^32 so a buffer crosses it (plain wraps, plain64 does not), else anywhere.
  return Math.random() < 0.5 ? 2 ** 32 - randomInt(1, 16) : randomInt(0, 2 ** 40);
}

for (const cipher of ['aes', 'twofish', 'serpent']) {
  for (const mode of modes) {
    const spec = parseCipherSpec(`${cipher}-${mode}`);
    test(`${spec.name}: native, node and reference agree for every key size; the definition oracle decrypts`, async () => {
      for (const keyBytes of keySizes(spec)) {
        const key = randomBytes(keyBytes);
        const cs: SectorCipher[] = engines.map((e) => createSectorCipher(spec, key, e));
        for (const ss of [512, 4096]) {
          const first = randomFirst();
          const pt = randomBytes(ss * (ss === 512 ? 5 : 2));
          const outs = cs.map((c) => {
            const b = Buffer.from(pt);
            c.encrypt(b, first, ss);
            return b;
          });
          const what = `${keyBytes * 8}-bit key, sector ${ss}, first ${first}`;
          assert.ok(!outs[0]!.equals(pt), `${what}: encrypts`);
          for (let i = 1; i < outs.length; i++) assert.deepEqual(outs[i], outs[0], `${what}: ${engines[i]} = native`);
          // The oracle reads one 512-byte-numbered sector at a time: keep its work small.
          const n = ss === 512 ? 2 * ss : ss;
          assert.deepEqual(oracleDecrypt(spec, key, outs[0]!.subarray(0, n), first, ss), pt.subarray(0, n), `${what}: oracle`);
          for (const [i, c] of cs.entries()) {
            const b = Buffer.from(outs[0]!);
            await c.decryptAsync(b, first, ss);
            assert.deepEqual(b, pt, `${what}: ${engines[i]} decryptAsync`);
            await c.encryptAsync(b, first, ss);
            assert.deepEqual(b, outs[0], `${what}: ${engines[i]} encryptAsync`);
            c.decrypt(b, first, ss);
            assert.deepEqual(b, pt, `${what}: ${engines[i]} decrypt`);
          }
          const into = (cs[0] as SectorCipher & { [cryptInto]: CryptInto })[cryptInto];
          for (const sync of [true, false]) {
            const dst = Buffer.alloc(pt.length);
            await into(true, pt, dst, first, ss, sync);
            assert.deepEqual(dst, outs[0], `${what}: native cryptInto (sync ${sync})`);
          }
        }
        for (const c of cs) c.destroy();
      }
    });
  }
}

test('the generic XTS code (native AES over EVP, TypeScript over noble AES) meets IEEE 1619 vectors 10-14', () => {
  const key = Buffer.from(KEY1 + KEY2, 'hex');
  const spec = parseCipherSpec('aes-xts-plain64');
  const cs = [createNativeSectorEngine(spec, key, undefined), createJsSectorEngine(spec, 'reference', blockUnits(spec, key))];
  for (const c of cs) {
    for (const v of vectors) {
      const b = plaintext();
      c.encrypt(b, v.sector, 512);
      assert.equal(b.toString('hex'), v.ct, `${c.engine}: vector ${v.n}`);
      c.decrypt(b, v.sector, 512);
      assert.deepEqual(b, plaintext());
    }
    c.destroy();
  }
});

test('destroy: later calls fail with ECLOSED on every engine; a destroyed native key is wiped once its calls return', async () => {
  for (const engine of engines) {
    const c = createSectorCipher('serpent-cbc-essiv:sha256', randomBytes(32), engine);
    const buf = randomBytes(64 * 1024);
    const pending = c.encryptAsync(buf, 0, 4096);
    c.destroy();
    await pending.catch(() => undefined); // finishing or failing is fine; it must not crash
    assert.throws(() => c.encrypt(Buffer.alloc(512), 0, 512), { name: 'NbdcryptError', code: 'ECLOSED' } as object);
    await assert.rejects(c.decryptAsync(Buffer.alloc(512), 0, 512), { name: 'NbdcryptError', code: 'ECLOSED' } as object);
  }
});

test('native: many concurrent async calls on one twofish key give the sync result', async () => {
  const key = randomBytes(64);
  const c = createSectorCipher('twofish-xts-plain64', key, 'native');
  const bufs = Array.from({ length: 64 }, () => randomBytes(64 * 1024));
  const want = bufs.map((b, i) => {
    const x = Buffer.from(b);
    c.encrypt(x, i * 1000, 4096);
    return x;
  });
  await Promise.all(bufs.map((b, i) => c.encryptAsync(b, i * 1000, 4096)));
  bufs.forEach((b, i) => assert.deepEqual(b, want[i]));
  c.destroy();
});
