/**
 * LUKS2 volumes whose data segment and keyslot areas use a cipher other than aes-xts-plain64
 * 512 (cryptsetup encrypts keyslot areas with the data cipher and the volume key size), with
 * cryptsetup and qemu as the judges. cryptsetup here has no kernel Twofish/Serpent (no
 * device-mapper, no AF_ALG module), so it formats and unlocks only the AES specs; for Twofish
 * and Serpent nbdcrypt formats, cryptsetup dumps and converts the volume to LUKS1 (which needs
 * no cipher), and qemu's luks driver opens that copy (keyslot area and data) and reads and
 * writes its plaintext; a Serpent LUKS1 volume converts to LUKS2 and back. Kernel dm-crypt on
 * cryptsetup's own Twofish/Serpent volumes: test/vm.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, scratchDir } from '../../peers/tools.js';
import * as cs from '../../peers/cryptsetup.js';
import { nbdcryptBin, startNbdcrypt } from '../../peers/nbdcrypt.js';
import { qemuIo } from '../../peers/qemu-io.js';
import { qemuLuksIo } from '../../peers/qemu-luks.js';
import { editMetadata, obj } from '../luks/craft-header.js';

let dir: { path: string; remove: () => void };
before(() => {
  cs.cryptsetup();
  dir = scratchDir('nbdcrypt-luks2-ciphers-');
});
after(() => dir.remove());

const SIZE = 20 << 20;
const DATA = 16 << 20;

function nbdcrypt(args: string[]): { stdout: string; stderr: string; status: number | null } {
  return run(process.execPath, [nbdcryptBin, ...args], { allowFail: true, timeoutMs: 120_000 });
}

function file(name: string, content?: string | Buffer): string {
  const p = join(dir.path, name);
  if (content !== undefined) writeFileSync(p, content, { mode: 0o600 });
  return p;
}

function blank(name: string): string {
  const img = file(name, '');
  truncateSync(img, SIZE);
  return img;
}

const fastArgon = ['--pbkdf', 'argon2id', '--pbkdf-memory', '32768', '--pbkdf-force-iterations', '4', '--pbkdf-parallel', '2'];
const fastPbkdf2 = ['--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000'];

const csCases = [
  { cipher: 'aes-cbc-plain64', keyBits: 256 },
  { cipher: 'aes-xts-plain64', keyBits: 256 },
  { cipher: 'aes-cbc-essiv:sha256', keyBits: 128 },
  { cipher: 'aes-ecb', keyBits: 192 },
];

for (const c of csCases) {
  test(`cryptsetup LUKS2 ${c.cipher} ${c.keyBits}-bit: dump equals luksDump, keys added by either open in the other`, () => {
    const img = blank(`cs-${c.cipher}-${c.keyBits}.img`);
    cs.luksFormat(img, 'first', { cipher: c.cipher, keyBits: c.keyBits });
    const mk = cs.volumeKey(img, 'first');
    assert.equal(mk.length * 8, c.keyBits);
    assert.match(cs.luksDump(img), new RegExp(`\\tCipher:     ${c.cipher}\\n\\tCipher key: ${c.keyBits} bits`));
    assert.equal(nbdcrypt(['dump', img]).stdout, cs.luksDump(img));
    const k = (name: string) => file(`${c.cipher}-${c.keyBits}-${name}`, name);
    let r = nbdcrypt(['dump', img, '--dump-volume-key', '--key-file', k('first')]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, cs.luksDumpVolumeKeyText(img, 'first'));

    r = nbdcrypt(['key', 'add', img, '--key-file', k('first'), '--new-key-file', k('second'), ...fastArgon]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(cs.testPassphrase(img, 'second'), 1);
    assert.equal(nbdcrypt(['dump', img]).stdout, cs.luksDump(img));
    assert.match(cs.luksDump(img), new RegExp(`  1: luks2\\n\\tKey:        ${c.keyBits} bits\\n\\tPriority:   normal\\n\\tCipher:     ${c.cipher}\\n\\tCipher key: ${c.keyBits} bits`));
    r = nbdcrypt(['key', 'change', img, '--key-file', k('second'), '--new-key-file', k('third'), ...fastPbkdf2]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(cs.testPassphrase(img, 'third'), 1);
    assert.equal(cs.testPassphrase(img, 'second'), null);
    cs.luksAddKey(img, 'third', 'from cryptsetup');
    r = nbdcrypt(['dump', img, '--dump-volume-key', '--key-file', k('from cryptsetup')]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(cs.parseMkDump(r.stdout), mk);
    r = nbdcrypt(['key', 'remove', img, '--key-file', k('first')]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(cs.testPassphrase(img, 'first'), null);
    assert.equal(nbdcrypt(['dump', img]).stdout, cs.luksDump(img));
    assert.deepEqual(cs.volumeKey(img, 'third'), mk, 'the volume key never changes');

    const csBackup = file(`${c.cipher}-${c.keyBits}.cs.hdr`);
    const mine = file(`${c.cipher}-${c.keyBits}.mine.hdr`);
    cs.luksHeaderBackup(img, csBackup);
    r = nbdcrypt(['header', 'backup', img, mine]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(mine).equals(readFileSync(csBackup)), 'header backup byte-identical to cryptsetup');
  });
}

test('nbdcrypt format --cipher for LUKS2: cryptsetup dumps it and opens its keyslot; defaults stay aes-xts-plain64 512', () => {
  const img = blank('fmt-aes.img');
  const key = file('fmt-aes.key', 'fmt');
  let r = nbdcrypt(['format', img, '--key-file', key, '--cipher', 'aes-cbc-essiv:sha256', ...fastArgon]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /LUKS2 UUID [0-9a-f-]{36}, aes-cbc-essiv:sha256, /);
  assert.equal(nbdcrypt(['dump', img]).stdout, cs.luksDump(img));
  assert.match(cs.luksDump(img), /\tcipher: aes-cbc-essiv:sha256\n[^]*\tKey:        256 bits\n\tPriority:   normal\n\tCipher:     aes-cbc-essiv:sha256\n\tCipher key: 256 bits\n/);
  assert.equal(cs.testPassphrase(img, 'fmt'), 0);
  assert.equal(cs.volumeKey(img, 'fmt').length, 32);

  const def = blank('fmt-default.img');
  r = nbdcrypt(['format', def, '--key-file', key, ...fastArgon]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(cs.luksDump(def), /\tcipher: aes-xts-plain64\n[^]*\tKey:        512 bits\n\tPriority:   normal\n\tCipher:     aes-xts-plain64\n\tCipher key: 512 bits\n/);

  for (const [args, status, msg] of [
    [['--cipher', 'serpent-xts-plain64', '--key-size', '192'], 2, /192-bit key is not supported; it takes 256, 384, 512 bits/],
    [['--cipher', 'cast5-cbc-plain64'], 4, /block cipher 'cast5'/],
    [['--cipher', 'aes-xts-plain64', '--hash', 'sha1'], 2, /--hash applies to --type luks1 only/],
  ] as const) {
    r = nbdcrypt(['format', blank('fmt-bad.img'), '--key-file', key, ...args, ...fastArgon]);
    assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
});

const oracleCases = [
  { cipher: 'serpent-xts-plain64', keyBits: 256 },
  { cipher: 'serpent-xts-plain64', keyBits: 512 },
  { cipher: 'twofish-cbc-essiv:sha256', keyBits: 256 },
  { cipher: 'twofish-xts-plain64', keyBits: 384 },
];

for (const c of oracleCases) {
  test(`LUKS2 ${c.cipher} ${c.keyBits}-bit: nbdcrypt serve writes, qemu reads the cryptsetup-converted LUKS1 copy; qemu writes, nbdcrypt reads`, async () => {
    const name = `${c.cipher}-${c.keyBits}`;
    const img = blank(`${name}.img`);
    const pass = file(`${name}.pass`, `pass ${name}`);
    let r = nbdcrypt(['format', img, '--key-file', pass, '--cipher', c.cipher, '--key-size', String(c.keyBits), '--sector-size', '512', ...fastPbkdf2]);
    assert.equal(r.status, 0, r.stderr);
    // A second keyslot added by nbdcrypt: its area is encrypted with the data cipher too.
    const second = file(`${name}.second`, `second ${name}`);
    r = nbdcrypt(['key', 'add', img, '--key-file', pass, '--new-key-file', second, ...fastPbkdf2]);
    assert.equal(r.status, 0, r.stderr);
    const dump = cs.luksDump(img);
    assert.equal(nbdcrypt(['dump', img]).stdout, dump);
    assert.equal([...dump.matchAll(new RegExp(`\\tCipher:     ${c.cipher}\\n\\tCipher key: ${c.keyBits} bits`, 'g'))].length, 2, dump);

    const srv = await startNbdcrypt(['serve', img, '--key-file', pass, '--listen', `unix:${join(dir.path, `${name}.sock`)}`]);
    try {
      assert.match(srv.proc.stderr(), new RegExp(`^nbdcrypt: LUKS2 volume [0-9a-f-]{36} unlocked with keyslot 0: ${SIZE - DATA} bytes, sector 512, ${c.cipher} \\(`, 'm'));
      qemuIo(srv.uri(), ['write -P 0x5a 0 1M', 'write -P 0x3c 1048579 70001', 'flush']);
    } finally {
      assert.equal(await srv.stop(), 0);
    }
    assert.equal(readFileSync(img).indexOf(Buffer.alloc(512, 0x5a)), -1, 'no plaintext on disk');

    const copy = file(`${name}-luks1.img`);
    copyFileSync(img, copy);
    run(cs.cryptsetup(), ['convert', '--batch-mode', '--type', 'luks1', copy]);
    assert.match(cs.luksDump(copy), /^Version:       \t1\n/m);
    qemuLuksIo(copy, second, ['read -P 0x5a 0 1M', 'read -P 0x3c 1048579 70001']);

    // qemu writes the LUKS1 copy; its data area (same key, same offset) goes back under the LUKS2 header.
    qemuLuksIo(copy, pass, ['write -P 0xa7 512 64k', 'write -P 0x19 2M 1M']);
    const data = readFileSync(copy).subarray(DATA);
    const both = readFileSync(img);
    data.copy(both, DATA);
    writeFileSync(img, both);
    const srv2 = await startNbdcrypt(['serve', img, '--key-file', second, '--listen', `unix:${join(dir.path, `${name}-2.sock`)}`]);
    try {
      qemuIo(srv2.uri(), ['read -P 0x5a 0 512', 'read -P 0xa7 512 64k', 'read -P 0x5a 66048 982528', 'read -P 0x19 2M 1M']);
    } finally {
      assert.equal(await srv2.stop(), 0);
    }
  });
}

test('a LUKS2 data or keyslot cipher nbdcrypt lacks is refused naming it, never served', async () => {
  const img = blank('odd.img');
  const pass = file('odd.pass', 'odd');
  const r0 = nbdcrypt(['format', img, '--key-file', pass, '--cipher', 'twofish-cbc-plain64', '--key-size', '192', ...fastPbkdf2]);
  assert.equal(r0.status, 0, r0.stderr);
  const good = readFileSync(img);
  for (const [where, value, status, named] of [
    ['segment', 'cast5-cbc-plain64', 4, "block cipher 'cast5'"],
    ['segment', 'twofish-cbc-essiv:sha1', 4, "ESSIV hash 'sha1'"],
    ['segment', 'twofish-xts-plain64', 4, 'twofish-xts-plain64: a 192-bit key is not supported'],
    ['keyslot', 'twofish-lrw-benbi', 4, "keyslot 0: area encryption twofish-lrw-benbi with a 192-bit key is not supported (cipher twofish-lrw-benbi: mode 'lrw'"],
  ] as const) {
    writeFileSync(img, good);
    await editMetadata(img, (raw) => {
      if (where === 'segment') obj(raw, 'segments', '0').encryption = value;
      else obj(raw, 'keyslots', '0', 'area').encryption = value;
    });
    const r = nbdcrypt(['serve', img, '--key-file', pass, '--listen', `unix:${join(dir.path, 'odd.sock')}`]);
    assert.equal(r.status, status, `${where} ${value}: ${r.stderr}`);
    assert.ok(r.stderr.includes(named), r.stderr);
    assert.doesNotMatch(r.stderr, /listening on|    at /, 'refused before serving, no stack trace');
    const d = nbdcrypt(['dump', img]);
    assert.equal(d.status, 0, d.stderr);
    assert.equal(d.stdout, cs.luksDump(img));
  }
});

test('convert: a Serpent LUKS1 volume qemu wrote becomes LUKS2 (nbdcrypt convert), serves, takes a key, and goes back (cryptsetup convert) for qemu', async () => {
  const img = blank('conv.img');
  const pass = file('conv.pass', 'conv pass');
  let r = nbdcrypt(['format', img, '--type', 'luks1', '--key-file', pass, '--cipher', 'serpent-cbc-essiv:sha256', '--key-size', '256', '--pbkdf-force-iterations', '1000']);
  assert.equal(r.status, 0, r.stderr);
  qemuLuksIo(img, pass, ['write -P 0x6b 0 512k', 'write -P 0x2e 3M 8k']);
  r = nbdcrypt(['convert', img, '--type', 'luks2', '--header-backup', file('conv.hdr')]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(nbdcrypt(['dump', img]).stdout, cs.luksDump(img));
  assert.match(cs.luksDump(img), /\tcipher: serpent-cbc-essiv:sha256\n[^]*\tCipher:     serpent-cbc-essiv:sha256\n\tCipher key: 256 bits\n/);
  const added = file('conv.added', 'added on LUKS2');
  r = nbdcrypt(['key', 'add', img, '--key-file', pass, '--new-key-file', added, ...fastPbkdf2]);
  assert.equal(r.status, 0, r.stderr);
  const srv = await startNbdcrypt(['serve', img, '--key-file', added, '--listen', `unix:${join(dir.path, 'conv.sock')}`]);
  try {
    assert.match(srv.proc.stderr(), /^nbdcrypt: LUKS2 volume [0-9a-f-]{36} unlocked with keyslot 1: \d+ bytes, sector 512, serpent-cbc-essiv:sha256 \(/m);
    qemuIo(srv.uri(), ['read -P 0x6b 0 512k', 'read -P 0x2e 3M 8k', 'write -P 0x90 1M 4k', 'flush']);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
  run(cs.cryptsetup(), ['convert', '--batch-mode', '--type', 'luks1', img]);
  qemuLuksIo(img, added, ['read -P 0x6b 0 512k', 'read -P 0x90 1M 4k', 'read -P 0x2e 3M 8k']);
});
