/**
 * Twofish and Serpent as raw block ciphers against their authors' published vectors, on the
 * native addon (through its ECB mode, 32 copies of the block per 512-byte sector, so the
 * multi-block paths run) and on the portable TypeScript code. Twofish: the known answers and
 * the 49-step chains of the AES submission (ecb_ival.txt, ecb_tbl.txt). Serpent: the
 * NESSIE-format "verified test vectors" from the authors (Serpent-{128,192,256}-128), whose
 * byte order is the one Linux and dm-crypt use. Also: the bitsliced S-box formulas equal the
 * S-box tables for every input.
 * Specs: Twofish paper (1998) appendix; Serpent AES proposal (1998).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSectorCipher } from '../../src/crypt/sector-cipher.js';
import { twofish } from '../../src/crypt/twofish.js';
import { serpent, SERPENT_SBOX_TABLES } from '../../src/crypt/serpent.js';
import { I, S } from '../../src/crypt/serpent-sboxes.js';
import type { BlockCipher } from '../../src/crypt/block-cipher.js';

type Impl = 'native' | 'typescript';
type Name = 'twofish' | 'serpent';

/** Encrypts (or decrypts) one block with a fresh key on the implementation under test. */
function crypt(impl: Impl, name: Name, key: Buffer, block: Buffer, enc: boolean): Buffer {
  if (impl === 'typescript') {
    const c: BlockCipher = name === 'twofish' ? twofish(key) : serpent(key);
    const b = Buffer.from(block);
    if (enc) c.encryptBlock(b, 0);
    else c.decryptBlock(b, 0);
    c.wipe();
    return b;
  }
  const c = createSectorCipher(`${name}-ecb`, key, 'native');
  const buf = Buffer.alloc(512);
  for (let i = 0; i < 32; i++) block.copy(buf, 16 * i);
  if (enc) c.encrypt(buf, 0, 512);
  else c.decrypt(buf, 0, 512);
  c.destroy();
  for (let i = 1; i < 32; i++) assert.deepEqual(buf.subarray(16 * i, 16 * i + 16), buf.subarray(0, 16), `block ${i} of the batch`);
  return buf.subarray(0, 16);
}

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

const twofishKats = [
  { key: '00000000000000000000000000000000', pt: '00000000000000000000000000000000', ct: '9f589f5cf6122c32b6bfec2f2ae8c35a' },
  { key: '0123456789abcdeffedcba98765432100011223344556677', pt: '00000000000000000000000000000000', ct: 'cfd1d2e5a9be9cdf501f13b892bd2248' },
  { key: '0123456789abcdeffedcba987654321000112233445566778899aabbccddeeff', pt: '00000000000000000000000000000000', ct: '37527be0052334b89f0cfccae87cfa20' },
];
/** ecb_tbl.txt: CT_i = E(KEY_i, PT_i); PT_i+1 = CT_i; KEY_i+1 = (PT_i ‖ PT_i-1) cut to the key size. */
const twofishChains = [
  { bytes: 16, ct49: '5d9d4eeffa9151575524f115815a12e0' },
  { bytes: 24, ct49: 'e75449212beef9f4a390bd860a640941' },
  { bytes: 32, ct49: '37fe26ff1cf66175f5ddf4c33b97a205' },
];

const serpentKats = [
  { key: '80000000000000000000000000000000', pt: '00000000000000000000000000000000', ct: '264e5481eff42a4606abda06c0bfda3d' },
  { key: '40000000000000000000000000000000', pt: '00000000000000000000000000000000', ct: '4a231b3bc727993407ac6ec8350e8524' },
  { key: '800000000000000000000000000000000000000000000000', pt: '00000000000000000000000000000000', ct: '9e274ead9b737bb21efcfca548602689' },
  { key: '100000000000000000000000000000000000000000000000', pt: '00000000000000000000000000000000', ct: 'bec1e37824cf721e5d87f6cb4ebfb9be' },
  { key: '000102030405060708090a0b0c0d0e0f1011121314151617', pt: '4528caccb954d450655e8cfd71cbfac7', ct: '00112233445566778899aabbccddeeff' },
  { key: '8000000000000000000000000000000000000000000000000000000000000000', pt: '00000000000000000000000000000000', ct: 'a223aa1288463c0e2be38ebd825616c0' },
  { key: '0101010101010101010101010101010101010101010101010101010101010101', pt: '01010101010101010101010101010101', ct: 'ec9723b15b2a6489f84c4524fffc2748' },
  { key: '0202020202020202020202020202020202020202020202020202020202020202', pt: '02020202020202020202020202020202', ct: '1187f485538514476184e567da0421c7' },
  { key: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', pt: '3da46ffa6f4d6f30cd258333e5a61369', ct: '00112233445566778899aabbccddeeff' },
];

for (const impl of ['native', 'typescript'] as const) {
  test(`${impl}: Twofish known answers for 128-, 192- and 256-bit keys, both directions`, () => {
    for (const v of twofishKats) {
      assert.equal(crypt(impl, 'twofish', hex(v.key), hex(v.pt), true).toString('hex'), v.ct, `encrypt, key ${v.key}`);
      assert.equal(crypt(impl, 'twofish', hex(v.key), hex(v.ct), false).toString('hex'), v.pt, `decrypt, key ${v.key}`);
    }
  });

  test(`${impl}: Twofish 49-step chains of ecb_tbl.txt`, () => {
    for (const { bytes, ct49 } of twofishChains) {
      let key: Buffer = Buffer.alloc(bytes);
      let pt: Buffer = Buffer.alloc(16);
      let prevPt: Buffer = Buffer.alloc(16);
      let ct: Buffer = Buffer.alloc(16);
      for (let i = 1; i <= 49; i++) {
        ct = crypt(impl, 'twofish', key, pt, true);
        assert.deepEqual(crypt(impl, 'twofish', key, ct, false), pt, `step ${i} decrypts`);
        key = Buffer.concat([pt, prevPt]).subarray(0, bytes);
        prevPt = pt;
        pt = ct;
      }
      assert.equal(ct.toString('hex'), ct49, `${bytes * 8}-bit chain`);
    }
  });

  test(`${impl}: Serpent verified vectors for 128-, 192- and 256-bit keys, both directions`, () => {
    for (const v of serpentKats) {
      assert.equal(crypt(impl, 'serpent', hex(v.key), hex(v.pt), true).toString('hex'), v.ct, `encrypt, key ${v.key}`);
      assert.equal(crypt(impl, 'serpent', hex(v.key), hex(v.ct), false).toString('hex'), v.pt, `decrypt, key ${v.key}`);
    }
  });
}

test('the bitsliced Serpent S-boxes and their inverses equal the tables for all 16 inputs in every bit lane', () => {
  for (let box = 0; box < 8; box++) {
    const table = SERPENT_SBOX_TABLES[box]!;
    for (let v = 0; v < 16; v++) {
      // Nibble v in bit lane (v + box) % 32 of the words, its complement elsewhere.
      const lane = (v + box) % 32;
      const x = new Int32Array(4);
      for (let b = 0; b < 4; b++) x[b] = (v >> b) & 1 ? 1 << lane : ~(1 << lane);
      S[box]!(x);
      const out = [0, 1, 2, 3].reduce((acc, b) => acc | (((x[b]! >>> lane) & 1) << b), 0);
      assert.equal(out, table[v], `S${box}(${v})`);
      const y = new Int32Array(4);
      for (let b = 0; b < 4; b++) y[b] = (table[v]! >> b) & 1 ? -1 : 0;
      I[box]!(y);
      assert.equal([0, 1, 2, 3].reduce((acc, b) => acc | ((y[b]! & 1) << b), 0), v, `I${box}(S${box}(${v}))`);
    }
  }
});
