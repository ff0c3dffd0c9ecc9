/**
 * LUKS1 volumes made by `cryptsetup luksFormat --type luks1` (several ciphers, hashes, key
 * sizes and payload offsets, two keyslots, a removed slot) opened by nbdcrypt, with cryptsetup
 * and qemu as the judges: `nbdcrypt dump` equals `cryptsetup luksDump` line for line (also
 * --dump-volume-key), the unlocked volume key equals cryptsetup's, data written by qemu's luks
 * driver reads back through nbdcrypt's EncryptedDevice and the reverse, keys added, changed or
 * removed by nbdcrypt are what `cryptsetup open --test-passphrase` sees and the reverse, and
 * header backups are byte-identical to cryptsetup's and restore each other.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, scratchDir } from '../../peers/tools.js';
import * as cs from '../../peers/cryptsetup.js';
import { nbdcryptBin } from '../../peers/nbdcrypt.js';
import { qemuLuksIo } from '../../peers/qemu-luks.js';
import { EncryptedDevice } from '../../src/crypt/encrypted-device.js';
import { openVolume } from '../../src/luks/open-volume.js';
import { ImageFile } from '../luks/image-file.js';

let dir: { path: string; remove: () => void };
before(() => {
  cs.cryptsetup();
  dir = scratchDir('nbdcrypt-luks1-cs-');
});
after(() => dir.remove());

const SIZE = 8 << 20;

function nbdcrypt(args: string[], input?: string | Buffer): { stdout: string; stderr: string; status: number | null } {
  return run(process.execPath, [nbdcryptBin, ...args], { input, allowFail: true, timeoutMs: 120_000 });
}

function file(name: string, content?: string | Buffer): string {
  const p = join(dir.path, name);
  if (content !== undefined) writeFileSync(p, content, { mode: 0o600 });
  return p;
}

function image(name: string, pass: string, o: cs.Luks1FormatOpts): string {
  const img = file(name, '');
  truncateSync(img, SIZE);
  cs.luksFormat1(img, pass, o);
  return img;
}

/** `qemu: false`: qemu 7.2 aborts on keyslots whose AF material is not whole sectors (192-bit keys); cryptsetup's volume key is the judge there. */
const cases: Array<cs.Luks1FormatOpts & { name: string; qemu?: false }> = [
  { name: 'xts512-sha256', cipher: 'aes-xts-plain64', keyBits: 512, hash: 'sha256' },
  { name: 'essiv256-sha1', cipher: 'aes-cbc-essiv:sha256', keyBits: 256, hash: 'sha1' },
  { name: 'xts256-sha512-off6000', cipher: 'aes-xts-plain64', keyBits: 256, hash: 'sha512', offsetSectors: 6000 },
  { name: 'cbc128-ripemd160-off4104', cipher: 'aes-cbc-plain64', keyBits: 128, hash: 'ripemd160', offsetSectors: 4104 },
  { name: 'essiv192-sha256', cipher: 'aes-cbc-essiv:sha256', keyBits: 192, hash: 'sha256', qemu: false },
];

for (const c of cases) {
  test(`cryptsetup LUKS1 ${c.cipher} ${c.keyBits}-bit ${c.hash}${c.offsetSectors ? ` offset ${c.offsetSectors}` : ''}: dump, keys, data both ways`, async () => {
    const img = image(`${c.name}.img`, 'first pass', c);
    cs.luksAddKey(img, 'first pass', 'second pass', { pbkdf: 'pbkdf2' });
    cs.luksAddKey(img, 'first pass', 'third pass', { pbkdf: 'pbkdf2' });
    cs.luksKillSlot(img, 0, 'second pass');

    const dump = nbdcrypt(['dump', img]);
    assert.equal(dump.status, 0, dump.stderr);
    assert.equal(dump.stdout, cs.luksDump(img));
    const keyFile = file(`${c.name}.key`, 'third pass');
    const mk = nbdcrypt(['dump', img, '--dump-volume-key', '--key-file', keyFile]);
    assert.equal(mk.status, 0, mk.stderr);
    assert.equal(mk.stdout, cs.luksDumpVolumeKeyText(img, 'third pass'));

    // qemu writes plaintext, nbdcrypt reads it; nbdcrypt writes, qemu reads.
    const passFile = file(`${c.name}.pass`, 'second pass');
    if (c.qemu !== false) qemuLuksIo(img, passFile, ['write -P 0x5a 0 256k', 'write -P 0x11 256k 256k', 'write -P 0xc3 1000448 4096']);
    const dev = new ImageFile(img);
    const vol = await openVolume(dev, Buffer.from('second pass'));
    assert.deepEqual([vol.format, vol.cipher, vol.keyslot, vol.sectorSize], ['LUKS1', c.cipher, 1, 512]);
    assert.equal(vol.dataOffset, Number(/^Payload offset:\t(\d+)$/m.exec(cs.luksDump(img))![1]) * 512);
    if (c.offsetSectors !== undefined) assert.equal(vol.dataOffset, c.offsetSectors * 512);
    assert.deepEqual(vol.volumeKey, cs.volumeKey(img, 'second pass'));
    const enc = new EncryptedDevice(dev, { key: vol.volumeKey, cipher: vol.cipher, dataOffset: vol.dataOffset, sectorSize: 512 });
    vol.volumeKey.fill(0);
    assert.equal(enc.size, SIZE - vol.dataOffset);
    if (c.qemu === false) return void (await enc.close());
    assert.ok((await enc.read(0, 256 * 1024)).every((b) => b === 0x5a));
    assert.ok((await enc.read(1000448, 4096)).every((b) => b === 0xc3));
    // An unaligned write (read-modify-write of its edge sectors).
    await enc.write(300_007, Buffer.alloc(70_001, 0x3c));
    await enc.flush();
    await enc.close();
    qemuLuksIo(img, passFile, ['read -P 0x5a 0 256k', 'read -P 0x3c 300007 70001', 'read -P 0x11 256k 37863', 'read -P 0x11 370008 154280', 'read -P 0xc3 1000448 4096']);
  });
}

test('LUKS1 key add/change/remove by nbdcrypt, judged by cryptsetup --test-passphrase, and the reverse', () => {
  const img = image('keys.img', 'one', { cipher: 'aes-cbc-essiv:sha256', keyBits: 256, hash: 'sha256' });
  const before = cs.volumeKey(img, 'one');
  const k = (name: string, v: string) => file(`keys-${name}`, v);
  const fast = ['--pbkdf-force-iterations', '1000'];
  let r = nbdcrypt(['key', 'add', img, '--key-file', k('one', 'one'), '--new-key-file', k('two', 'two'), ...fast]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(cs.testPassphrase(img, 'two'), 1);
  r = nbdcrypt(['key', 'add', img, '--key-file', k('two', 'two'), '--new-key-file', k('five', 'five'), '--key-slot', '5', ...fast]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(cs.testPassphrase(img, 'five'), 5);
  assert.equal(nbdcrypt(['dump', img]).stdout, cs.luksDump(img));

  // A change moves to the first free slot, then removes the old one (cryptsetup's LUKS1 way).
  r = nbdcrypt(['key', 'change', img, '--key-file', k('two', 'two'), '--new-key-file', k('deux', 'deux'), ...fast]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(cs.testPassphrase(img, 'deux'), 2);
  assert.equal(cs.testPassphrase(img, 'two'), null);
  // In place with --key-slot.
  r = nbdcrypt(['key', 'change', img, '--key-file', k('five', 'five'), '--new-key-file', k('cinq', 'cinq'), '--key-slot', '5', ...fast]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(cs.testPassphrase(img, 'cinq'), 5);

  r = nbdcrypt(['key', 'remove', img, '--key-file', k('one', 'one')]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(cs.testPassphrase(img, 'one'), null);
  r = nbdcrypt(['key', 'remove', img, '--key-file', k('deux', 'deux'), '--key-slot', '5']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(cs.testPassphrase(img, 'cinq'), null);
  assert.equal(nbdcrypt(['dump', img]).stdout, cs.luksDump(img));
  r = nbdcrypt(['key', 'remove', img, '--key-file', k('deux', 'deux')]);
  assert.equal(r.status, 2, 'the last keyslot needs --force');
  assert.match(r.stderr, /last one/);

  // The reverse: cryptsetup's changes, nbdcrypt opens.
  cs.luksAddKey(img, 'deux', 'from cryptsetup', { pbkdf: 'pbkdf2' });
  const mk = nbdcrypt(['dump', img, '--dump-volume-key', '--key-file', k('cs', 'from cryptsetup')]);
  assert.equal(mk.status, 0, mk.stderr);
  assert.deepEqual(cs.parseMkDump(mk.stdout), before);
  r = nbdcrypt(['key', 'add', img, '--key-file', k('bad', 'wrong'), '--new-key-file', k('x', 'x'), ...fast]);
  assert.equal(r.status, 3, r.stderr);
  r = nbdcrypt(['key', 'add', img, '--key-file', k('deux', 'deux'), '--new-key-file', k('x', 'x'), '--pbkdf', 'argon2id']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /LUKS1 keyslots use pbkdf2/);
  assert.deepEqual(cs.volumeKey(img, 'deux'), before, 'the volume key never changes');
});

test('LUKS1 header backup: byte-identical to cryptsetup luksHeaderBackup; each restores the other', () => {
  const img = image('backup.img', 'pw', { cipher: 'aes-xts-plain64', keyBits: 512, hash: 'sha1' });
  const csBackup = join(dir.path, 'cs.hdr');
  cs.luksHeaderBackup(img, csBackup);
  const mine = join(dir.path, 'mine.hdr');
  let r = nbdcrypt(['header', 'backup', img, mine]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(readFileSync(mine).equals(readFileSync(csBackup)));

  const original = readFileSync(img);
  cs.luksAddKey(img, 'pw', 'later', { pbkdf: 'pbkdf2' });
  r = nbdcrypt(['header', 'restore', img, csBackup]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(readFileSync(img).equals(original), 'restore puts back header and keyslots, nothing else changes');
  assert.equal(cs.testPassphrase(img, 'later'), null);
  cs.luksAddKey(img, 'pw', 'later', { pbkdf: 'pbkdf2' });
  cs.luksHeaderRestore(img, mine);
  assert.ok(readFileSync(img).equals(original));

  const other = image('other.img', 'pw', { cipher: 'aes-xts-plain64', keyBits: 512, hash: 'sha1' });
  const otherBefore = readFileSync(other);
  r = nbdcrypt(['header', 'restore', other, mine]);
  assert.equal(r.status, 5, r.stderr);
  assert.match(r.stderr, /different LUKS volume/);
  assert.ok(readFileSync(other).equals(otherBefore), 'nothing written');
  const luks2 = file('luks2.img', '');
  truncateSync(luks2, 17 << 20);
  cs.luksFormat(luks2, 'pw', { pbkdf: 'pbkdf2' });
  const luks2Backup = join(dir.path, 'luks2.hdr');
  cs.luksHeaderBackup(luks2, luks2Backup);
  const big = file('big.img', '');
  truncateSync(big, 20 << 20);
  cs.luksFormat1(big, 'pw', { cipher: 'aes-xts-plain64', keyBits: 512, hash: 'sha1' });
  const bigBefore = readFileSync(big);
  r = nbdcrypt(['header', 'restore', big, luks2Backup]);
  assert.equal(r.status, 5, r.stderr);
  assert.match(r.stderr, /holds a LUKS1 volume and the backup is LUKS2/);
  assert.ok(readFileSync(big).equals(bigBefore), 'nothing written');
  r = nbdcrypt(['header', 'restore', luks2, mine]);
  assert.equal(r.status, 5, r.stderr);
  assert.match(r.stderr, /different LUKS volume/);
  assert.ok(readFileSync(other).equals(otherBefore), 'nothing written');
  const small = image('small.img', 'pw', { cipher: 'aes-xts-plain64', keyBits: 256, hash: 'sha1' });
  r = nbdcrypt(['header', 'restore', small, mine, '--force']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /another volume/);
});

test('format --type luks1: cryptsetup opens it, its layout is cryptsetup\'s; qemu opens a Twofish one', () => {
  const key = file('fmt.key', 'format pass');
  for (const [cipher, bits, hash, offset] of [
    ['aes-xts-plain64', '512', 'sha256', undefined],
    ['aes-cbc-essiv:sha256', '128', 'ripemd160', '6144'],
  ] as const) {
    const img = file(`fmt-${bits}.img`, '');
    truncateSync(img, SIZE);
    const r = nbdcrypt(['format', img, '--type', 'luks1', '--cipher', cipher, '--key-size', bits, '--hash', hash, '--key-file', key, '--pbkdf-force-iterations', '1000', ...(offset ? ['--offset', offset] : [])]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`formatted .*: LUKS1 UUID [0-9a-f-]{36}, ${cipher.replace('+', '\\+')}`));
    assert.equal(cs.testPassphrase(img, 'format pass'), 0);
    const dump = cs.luksDump(img);
    assert.equal(nbdcrypt(['dump', img]).stdout, dump);
    const ref = image(`ref-${bits}.img`, 'x', { cipher, keyBits: Number(bits), hash, offsetSectors: offset ? Number(offset) : undefined });
    const layout = (t: string) => t.split('\n').filter((l) => /^(Cipher|Hash|Payload|MK bits|MK iterations|\tKey material|\tAF|Key Slot)/.test(l));
    assert.deepEqual(layout(dump), layout(cs.luksDump(ref)));
    const mk = nbdcrypt(['dump', img, '--dump-volume-key', '--key-file', key]);
    assert.deepEqual(cs.parseMkDump(mk.stdout), cs.volumeKey(img, 'format pass'));
  }
  const tf = file('fmt-twofish.img', '');
  truncateSync(tf, SIZE);
  const r = nbdcrypt(['format', tf, '--type', 'luks1', '--cipher', 'twofish-cbc-essiv:sha256', '--hash', 'sha256', '--key-file', key, '--pbkdf-force-iterations', '1000']);
  assert.equal(r.status, 0, r.stderr);
  qemuLuksIo(tf, key, ['write -P 0x61 0 64k', 'read -P 0x61 0 64k']);
  assert.equal(nbdcrypt(['dump', tf]).stdout, cs.luksDump(tf));
  const again = nbdcrypt(['format', tf, '--type', 'luks1', '--key-file', key]);
  assert.equal(again.status, 5, again.stderr);
  assert.match(again.stderr, /already holds a LUKS1 header \(UUID/);
  for (const bad of [['--type', 'luks1', '--label', 'x'], ['--type', 'luks1', '--sector-size', '4096'], ['--cipher', 'twofish-xts-plain64'], ['--type', 'luks1', '--cipher', 'aes-xts-plain64', '--key-size', '128'], ['--type', 'luks3']]) {
    const u = nbdcrypt(['format', file('unused.img', ''), '--force', '--key-file', key, ...bad]);
    assert.equal(u.status, 2, `${bad.join(' ')}: ${u.stderr}`);
  }
});

test('convert --type luks2: the same JSON metadata as cryptsetup convert, data untouched, undone by the backup', async () => {
  const img = image('conv.img', 'pw one', { cipher: 'aes-xts-plain64', keyBits: 512, hash: 'sha256' });
  cs.luksAddKey(img, 'pw one', 'pw two', { pbkdf: 'pbkdf2' });
  cs.luksKillSlot(img, 0, 'pw two');
  const original = readFileSync(img);
  const ref = file('conv-ref.img', original);
  run(cs.cryptsetup(), ['convert', '--batch-mode', '--type', 'luks2', ref]);
  const backup = join(dir.path, 'conv.hdr');
  let r = nbdcrypt(['convert', img, '--type', 'luks2', '--header-backup', backup]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /converted .* to LUKS2/);
  assert.deepEqual(cs.luksDumpJson(img), cs.luksDumpJson(ref));
  assert.equal(nbdcrypt(['dump', img]).stdout, cs.luksDump(img));
  assert.equal(cs.testPassphrase(img, 'pw two'), 1);
  const after = readFileSync(img);
  assert.ok(after.subarray(2 << 20).equals(original.subarray(2 << 20)), 'the data area is untouched');
  assert.ok(after.subarray(32768, 2 << 20).equals(readFileSync(ref).subarray(32768, 2 << 20)), "keyslot areas where cryptsetup's are");
  const dev = new ImageFile(img);
  const vol = await openVolume(dev, Buffer.from('pw two'));
  assert.deepEqual([vol.format, vol.keyslot, vol.dataOffset], ['LUKS2', 1, 2 << 20]);
  assert.deepEqual(vol.volumeKey, cs.volumeKey(ref, 'pw two'));
  await dev.close();

  r = nbdcrypt(['convert', img, '--type', 'luks2']);
  assert.equal(r.status, 4, r.stderr);
  assert.match(r.stderr, /already holds a LUKS2 header/);

  // And back: the LUKS1 header and key material are the original ones, as with cryptsetup.
  r = nbdcrypt(['convert', img, '--type', 'luks1', '--header-backup', join(dir.path, 'conv2.hdr')]);
  assert.equal(r.status, 0, r.stderr);
  run(cs.cryptsetup(), ['convert', '--batch-mode', '--type', 'luks1', ref]);
  assert.equal(nbdcrypt(['dump', img]).stdout.replace(img, 'X'), cs.luksDump(ref).replace(ref, 'X'));
  const back = readFileSync(img);
  assert.ok(back.subarray(0, 592).equals(original.subarray(0, 592)), 'the LUKS1 header is the original');
  assert.ok(back.subarray(512 * 512, 1012 * 512).equals(original.subarray(512 * 512, 1012 * 512)), 'keyslot 1 material is back in place');
  assert.ok(back.subarray(2 << 20).equals(original.subarray(2 << 20)), 'the data area is untouched');
  assert.equal(cs.testPassphrase(img, 'pw two'), 1);
  const luks2 = file('argon.img', '');
  truncateSync(luks2, 17 << 20);
  cs.luksFormat(luks2, 'pw', { sectorSize: 512 });
  const argonBefore = readFileSync(luks2);
  r = nbdcrypt(['convert', luks2, '--type', 'luks1', '--header-backup', join(dir.path, 'argon.hdr')]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /keyslot 0 uses argon2id; LUKS1 keyslots are pbkdf2/);
  assert.ok(readFileSync(luks2).equals(argonBefore), 'nothing changed');

  r = nbdcrypt(['convert', img, '--type', 'luks2', '--header-backup', join(dir.path, 'conv3.hdr')]);
  assert.equal(r.status, 0, r.stderr);
  r = nbdcrypt(['header', 'restore', img, backup]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(readFileSync(img).subarray(0, 2056 * 512).equals(original.subarray(0, 2056 * 512)), 'the backup puts the LUKS1 header and keyslots back');
  assert.equal(cs.testPassphrase(img, 'pw two'), 1);

  r = nbdcrypt(['convert', img, '--type', 'luks2', '--header-backup', backup]);
  assert.equal(r.status, 5, 'an existing backup file is never overwritten');
  assert.equal(nbdcrypt(['convert', img, '--type', 'luks3']).status, 2);
  const tight = image('tight.img', 'pw', { cipher: 'aes-xts-plain64', keyBits: 512, hash: 'sha256', offsetSectors: 4040 });
  const tightBefore = readFileSync(tight);
  r = nbdcrypt(['convert', tight, '--type', 'luks2', '--header-backup', join(dir.path, 'tight.hdr')]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /keyslots would end at byte .* past the payload/);
  assert.ok(readFileSync(tight).equals(tightBefore), 'nothing changed');
  assert.notEqual(run(cs.cryptsetup(), ['convert', '--batch-mode', '--type', 'luks2', tight], { allowFail: true }).status, 0, 'cryptsetup refuses it too');
});
