/**
 * `nbdcrypt serve` on LUKS1 images made by qemu-img (Twofish, Serpent and AES in XTS and CBC
 * with plain64, plain and ESSIV IVs; sha1, sha256, sha512 and ripemd160 headers), with qemu's
 * own luks driver as the judge: what qemu wrote reads back through nbdcrypt over NBD, what
 * nbdcrypt wrote (unaligned included) reads back through qemu, the one log line names the
 * format and cipher, `dump` equals `cryptsetup luksDump`, a keyslot nbdcrypt adds opens in qemu,
 * and a header naming a cipher nbdcrypt lacks is refused with exit status 4 naming it.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { luksDump } from '../../peers/cryptsetup.js';
import { nbdinfoJson } from '../../peers/nbdinfo.js';
import { nbdcryptBin, startNbdcrypt } from '../../peers/nbdcrypt.js';
import { qemuIo } from '../../peers/qemu-io.js';
import { qemuLuksCreate, qemuLuksIo, type QemuLuksFormat } from '../../peers/qemu-luks.js';
import { run, scratchDir } from '../../peers/tools.js';

const PAYLOAD = 4 << 20;
let dir: { path: string; remove: () => void };
let pass: string;
before(() => {
  dir = scratchDir('nbdcrypt-luks1-qemu-');
  pass = join(dir.path, 'pass');
  writeFileSync(pass, 'qemu luks1 passphrase', { mode: 0o600 });
});
after(() => dir.remove());

function nbdcrypt(args: string[]) {
  return run(process.execPath, [nbdcryptBin, ...args], { allowFail: true, timeoutMs: 120_000 });
}

const cases: Array<QemuLuksFormat & { spec: string }> = [
  { cipherAlg: 'twofish-256', cipherMode: 'cbc', ivgenAlg: 'essiv', hashAlg: 'sha256', spec: 'twofish-cbc-essiv:sha256' },
  { cipherAlg: 'twofish-128', cipherMode: 'xts', ivgenAlg: 'plain64', hashAlg: 'sha1', spec: 'twofish-xts-plain64' },
  { cipherAlg: 'serpent-256', cipherMode: 'xts', ivgenAlg: 'plain64', hashAlg: 'sha512', spec: 'serpent-xts-plain64' },
  { cipherAlg: 'serpent-128', cipherMode: 'cbc', ivgenAlg: 'plain64', hashAlg: 'ripemd160', spec: 'serpent-cbc-plain64' },
  { cipherAlg: 'aes-256', cipherMode: 'cbc', ivgenAlg: 'essiv', hashAlg: 'sha1', spec: 'aes-cbc-essiv:sha256' },
  { cipherAlg: 'aes-128', cipherMode: 'cbc', ivgenAlg: 'plain', hashAlg: 'sha256', spec: 'aes-cbc-plain' },
];

for (const c of cases) {
  test(`serve a qemu LUKS1 ${c.spec} (${c.cipherAlg}, ${c.hashAlg}) volume: qemu -> nbdcrypt -> qemu`, async () => {
    const name = `${c.cipherAlg}-${c.cipherMode}-${c.ivgenAlg}-${c.hashAlg}`;
    const img = join(dir.path, `${name}.img`);
    qemuLuksCreate(img, pass, c, PAYLOAD);
    qemuLuksIo(img, pass, ['write -P 0x5a 0 1M', 'write -P 0x11 1M 1M']);
    assert.equal(nbdcrypt(['dump', img]).stdout, luksDump(img));

    const srv = await startNbdcrypt(['serve', img, '--key-file', pass, '--listen', `unix:${join(dir.path, `${name}.sock`)}`]);
    try {
      assert.match(srv.proc.stderr(), new RegExp(`^nbdcrypt: LUKS1 volume [0-9a-f-]{36} unlocked with keyslot 0: ${PAYLOAD} bytes, sector 512, ${c.spec} \\(`, 'm'));
      assert.equal(nbdinfoJson(srv.uri()).exports[0]!['export-size'], PAYLOAD);
      qemuIo(srv.uri(), ['read -P 0x5a 0 1M', 'write -P 0x77 1048577 4095', 'flush']);
    } finally {
      assert.equal(await srv.stop(), 0);
    }
    qemuLuksIo(img, pass, ['read -P 0x5a 0 1M', 'read -P 0x77 1048577 4095', 'read -P 0x11 1M 1', 'read -P 0x11 1052672 1044480']);
    assert.equal(readFileSync(img).indexOf(Buffer.alloc(512, 0x5a)), -1, 'no plaintext on disk');
  });
}

test('a keyslot nbdcrypt adds to a qemu Twofish volume opens in qemu; a wrong passphrase exits 3', () => {
  const img = join(dir.path, 'keys.img');
  qemuLuksCreate(img, pass, cases[0]!, PAYLOAD);
  qemuLuksIo(img, pass, ['write -P 0x42 0 64k']);
  const fresh = join(dir.path, 'fresh');
  writeFileSync(fresh, 'a new passphrase', { mode: 0o600 });
  let r = nbdcrypt(['key', 'add', img, '--key-file', pass, '--new-key-file', fresh, '--pbkdf-force-iterations', '1000']);
  assert.equal(r.status, 0, r.stderr);
  r = nbdcrypt(['key', 'remove', img, '--key-file', pass]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(nbdcrypt(['dump', img]).stdout, luksDump(img));
  qemuLuksIo(img, fresh, ['read -P 0x42 0 64k']);
  r = nbdcrypt(['dump', img, '--dump-volume-key', '--key-file', pass]);
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /wrong passphrase for keyslot 1/);
});

test('a LUKS1 header naming a cipher or mode nbdcrypt lacks: serve exits 4 naming it, dump still prints it', () => {
  const img = join(dir.path, 'odd.img');
  qemuLuksCreate(img, pass, cases[4]!, PAYLOAD);
  const good = readFileSync(img);
  for (const [field, at, value, named] of [
    ['cipher name', 8, 'cast5', "block cipher 'cast5'"],
    ['cipher mode', 40, 'lrw-benbi', "mode 'lrw'"],
    ['cipher mode', 40, 'cbc-essiv:sha1', "ESSIV hash 'sha1'"],
  ] as const) {
    const bad = Buffer.from(good);
    bad.fill(0, at, at + 32);
    bad.write(value, at, 'latin1');
    writeFileSync(img, bad);
    const r = nbdcrypt(['serve', img, '--key-file', pass, '--listen', `unix:${join(dir.path, 'odd.sock')}`]);
    assert.equal(r.status, 4, `${field} ${value}: ${r.stderr}`);
    assert.ok(r.stderr.includes(named), r.stderr);
    assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('nbdcrypt: error:')).length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /listening on|    at /, 'refused before serving, no stack trace');
    const d = nbdcrypt(['dump', img]);
    assert.equal(d.status, 0, d.stderr);
    assert.equal(d.stdout, luksDump(img));
  }
});
