/**
 * LUKS2 interoperability with cryptsetup 2.6 as the oracle: images made by cryptsetup open in
 * nbdcrypt with the same volume key; images made by nbdcrypt pass luksDump and
 * `open --test-passphrase` with the same key; after keyslot changes on either side both agree
 * on which passphrase opens which slot; dumps match luksDump byte for byte; header backups
 * move between the two tools.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { truncateSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, scratchDir } from '../../peers/tools.js';
import * as cs from '../../peers/cryptsetup.js';
import { ImageFile, recordWrites } from '../luks/image-file.js';
import { openVolume } from '../../src/luks/open-volume.js';
import { formatVolume, type FormatOptions } from '../../src/luks/format-volume.js';
import { addKey, removeKey, changeKey } from '../../src/luks/key-operations.js';
import { dumpHeader } from '../../src/luks/dump-header.js';
import { backupHeader, restoreHeader } from '../../src/luks/header-backup.js';
import { isNbdcryptError } from '../../src/errors.js';

const SIZE = 20 * 1024 * 1024;
const fast: FormatOptions = { pbkdfMemoryKiB: 32768, pbkdfForceIterations: 4, pbkdfParallel: 2 };
const fastPbkdf2: FormatOptions = { pbkdf: 'pbkdf2', pbkdfForceIterations: 1000 };
let dir: { path: string; remove: () => void };

before(() => {
  cs.cryptsetup();
  dir = scratchDir('nbdcrypt-luks2-');
});
after(() => dir.remove());

function image(name: string): string {
  const path = join(dir.path, name);
  writeFileSync(path, '');
  truncateSync(path, SIZE);
  return path;
}

async function withImage<T>(path: string, fn: (dev: ImageFile) => Promise<T>, readOnly = false): Promise<T> {
  const dev = new ImageFile(path, { readOnly });
  try {
    return await fn(dev);
  } finally {
    await dev.close();
  }
}

/** Which slot nbdcrypt opens with `pass` (null = ENOKEY), checking that a failure writes nothing. */
async function ourSlot(path: string, pass: string): Promise<number | null> {
  return withImage(path, async (file) => {
    const { dev, writes } = recordWrites(file);
    try {
      const v = await openVolume(dev, Buffer.from(pass));
      v.volumeKey.fill(0);
      return v.keyslot;
    } catch (e) {
      assert.ok(isNbdcryptError(e, 'ENOKEY'), `expected ENOKEY, got ${String(e)}`);
      assert.deepEqual(writes, [], 'a failed open must write nothing');
      return null;
    }
  });
}

const made: Array<{ name: string; fmt: cs.FormatOpts; extra: Array<[string, 'argon2id' | 'pbkdf2']> }> = [
  { name: 'argon2id-4096-label', fmt: { pbkdf: 'argon2id', sectorSize: 4096, label: 'backup disk' }, extra: [['second', 'pbkdf2']] },
  { name: 'pbkdf2-512', fmt: { pbkdf: 'pbkdf2', sectorSize: 512 }, extra: [] },
  { name: 'argon2id-512-three-slots', fmt: { pbkdf: 'argon2id', sectorSize: 512, label: 'x' }, extra: [['second', 'argon2id'], ['third', 'pbkdf2']] },
];

for (const m of made) {
  test(`cryptsetup-made image (${m.name}) opens in nbdcrypt with the same volume key, and dumps match`, async () => {
    const img = image(`${m.name}.img`);
    cs.luksFormat(img, 'first', m.fmt);
    for (const [p, kdf] of m.extra) cs.luksAddKey(img, 'first', p, { pbkdf: kdf });
    const want = cs.volumeKey(img, 'first');
    for (const p of ['first', ...m.extra.map((e) => e[0])]) {
      const v = await withImage(img, (dev) => openVolume(dev, Buffer.from(p)), true);
      assert.deepEqual(v.volumeKey, want, `volume key via '${p}'`);
      assert.equal(v.keyslot, cs.testPassphrase(img, p));
      assert.equal(v.sectorSize, m.fmt.sectorSize);
      assert.equal(v.dataOffset, 16 * 1024 * 1024);
      assert.equal(v.label, m.fmt.label ?? '');
    }
    assert.equal(await ourSlot(img, 'wrong'), null);
    const ours = await withImage(img, (dev) => dumpHeader(dev), true);
    assert.equal(ours, cs.luksDump(img));
    const oursKey = await withImage(img, (dev) => dumpHeader(dev, { passphrase: Buffer.from('first'), deviceName: img }), true);
    assert.equal(oursKey, cs.luksDumpVolumeKeyText(img, 'first'));
  });
}

for (const [sectorSize, opts] of [
  [4096, fast],
  [512, fastPbkdf2],
] as const) {
  test(`nbdcrypt-formatted image (sector ${sectorSize}, ${opts.pbkdf ?? 'argon2id'}) passes luksDump and open --test-passphrase with the same key`, async () => {
    const img = image(`ours-${sectorSize}.img`);
    const v = await withImage(img, (dev) => formatVolume(dev, Buffer.from('pw one'), { ...opts, sectorSize, label: 'nbdcrypt test' }));
    assert.equal(cs.testPassphrase(img, 'pw one'), 0);
    assert.equal(cs.testPassphrase(img, 'pw two'), null);
    assert.deepEqual(cs.volumeKey(img, 'pw one'), v.volumeKey);
    const json = cs.luksDumpJson(img) as { segments: Record<string, { sector_size: number }> };
    assert.equal(json.segments['0']!.sector_size, sectorSize);
    assert.equal(await withImage(img, (dev) => dumpHeader(dev), true), cs.luksDump(img));
    // The on-disk JSON text is exactly the compact form cryptsetup itself writes.
    const area = readFileSync(img).subarray(4096, 16384);
    const text = area.subarray(0, area.indexOf(0)).toString();
    assert.equal(text, JSON.stringify(json));
  });
}

test('format refuses an existing LUKS2 header or non-empty device without force', async () => {
  const img = image('refuse.img');
  cs.luksFormat(img, 'x', { pbkdf: 'pbkdf2' });
  await withImage(img, async (file) => {
    const { dev, writes } = recordWrites(file);
    await assert.rejects(formatVolume(dev, Buffer.from('y'), fastPbkdf2), (e) => isNbdcryptError(e, 'EEXIST'));
    assert.deepEqual(writes, []);
  });
  const fsLike = image('nonzero.img');
  writeFileSync(fsLike, Buffer.from('some filesystem superblock'), { flag: 'r+' });
  await withImage(fsLike, async (dev) => {
    await assert.rejects(formatVolume(dev, Buffer.from('y'), fastPbkdf2), /not empty/);
    await formatVolume(dev, Buffer.from('y'), { ...fastPbkdf2, force: true });
  });
  assert.equal(cs.testPassphrase(fsLike, 'y'), 0);
});

test('after key add/remove/change on either side cryptsetup and nbdcrypt agree on which passphrase opens which slot', async () => {
  const img = image('keys.img');
  await withImage(img, async (dev) => {
    await formatVolume(dev, Buffer.from('p0'), fast);
    assert.equal(await addKey(dev, Buffer.from('p0'), Buffer.from('p1'), fastPbkdf2), 1);
    assert.equal(await addKey(dev, Buffer.from('p1'), Buffer.from('p5'), { ...fast, keySlot: 5 }), 5);
    assert.equal(await addKey(dev, Buffer.from('p0'), Buffer.from('p2'), fast), 2);
    assert.equal(await changeKey(dev, Buffer.from('p0'), Buffer.from('p0-new'), fast), 0);
    assert.equal(await removeKey(dev, Buffer.from('p2')), 2);
  });
  cs.luksAddKey(img, 'p5', 'c3', { pbkdf: 'pbkdf2' }); // cryptsetup takes the lowest free slot: 2
  cs.luksChangeKey(img, 'p1', 'p1-new', { pbkdf: 'argon2id' });
  cs.luksKillSlot(img, 5, 'p0-new');
  const expected: Record<string, number | null> = { p0: null, 'p0-new': 0, p1: null, 'p1-new': 1, p2: null, c3: 2, p5: null };
  for (const [p, slot] of Object.entries(expected)) {
    assert.equal(cs.testPassphrase(img, p), slot, `cryptsetup slot for '${p}'`);
    assert.equal(await ourSlot(img, p), slot, `nbdcrypt slot for '${p}'`);
  }
  assert.equal(await withImage(img, (dev) => dumpHeader(dev), true), cs.luksDump(img));
});

test('header backups move between nbdcrypt and cryptsetup', async () => {
  const img = image('backup.img');
  const key = await withImage(img, async (dev) => (await formatVolume(dev, Buffer.from('b'), fastPbkdf2)).volumeKey);
  const ours = join(dir.path, 'ours.hdr');
  writeFileSync(ours, await withImage(img, (dev) => backupHeader(dev), true));
  const theirs = join(dir.path, 'theirs.hdr');
  cs.luksHeaderBackup(img, theirs);
  // Wreck both header copies, then restore with the other tool's backup each way.
  writeFileSync(img, Buffer.alloc(64 * 1024, 0xee), { flag: 'r+' });
  assert.equal(await withImage(img, (dev) => openVolume(dev, Buffer.from('b')).then(() => 'opened', (e: unknown) => (isNbdcryptError(e, 'EBADHDR') ? 'EBADHDR' : String(e)))), 'EBADHDR');
  cs.luksHeaderRestore(img, ours);
  assert.equal(cs.testPassphrase(img, 'b'), 0);
  writeFileSync(img, Buffer.alloc(64 * 1024, 0xee), { flag: 'r+' });
  await withImage(img, async (dev) => restoreHeader(dev, readFileSync(theirs), { force: true }));
  const v = await withImage(img, (dev) => openVolume(dev, Buffer.from('b')));
  assert.deepEqual(v.volumeKey, key);
  assert.equal(cs.testPassphrase(img, 'b'), 0);
});

test('dump matches luksDump with tokens, keyslot priorities and a subsystem', async () => {
  const img = image('extras.img');
  cs.luksFormat(img, 'a', { pbkdf: 'pbkdf2' });
  cs.luksAddKey(img, 'a', 'b', { pbkdf: 'pbkdf2' });
  cs.luksAddKey(img, 'a', 'c', { pbkdf: 'pbkdf2' });
  const c = (args: string[]) => run(cs.cryptsetup(), args);
  c(['token', 'add', '--key-description', 'my key', '--key-slot', '1', img]);
  c(['config', '--priority', 'prefer', '--key-slot', '2', img]);
  c(['config', '--priority', 'ignore', '--key-slot', '0', img]);
  c(['config', '--subsystem', 'backup', '--label', 'café ☕', img]);
  assert.equal(await withImage(img, (dev) => dumpHeader(dev), true), cs.luksDump(img));
  // Preferred slot first; an ignored slot only when named, as cryptsetup does.
  assert.equal(await ourSlot(img, 'a'), null);
  assert.equal(cs.testPassphrase(img, 'a'), null);
  assert.equal((await withImage(img, (dev) => openVolume(dev, Buffer.from('a'), { keySlot: 0 }), true)).keyslot, 0);
  assert.equal(await ourSlot(img, 'c'), 2);
  // A metadata write by nbdcrypt keeps what it does not manage (token, priorities, subsystem).
  await withImage(img, (dev) => addKey(dev, Buffer.from('b'), Buffer.from('d'), fastPbkdf2));
  const json = cs.luksDumpJson(img) as { tokens: Record<string, { keyslots: string[] }>; keyslots: Record<string, { priority?: number }> };
  assert.deepEqual(json.tokens['0']!.keyslots, ['1']);
  assert.equal(json.keyslots['2']!.priority, 2);
  assert.equal(cs.testPassphrase(img, 'd'), 3);
  assert.match(cs.luksDump(img), /Subsystem:\s+\tbackup/);
});

test('bit flips in the primary of a cryptsetup image: nbdcrypt opens from the secondary and repairs the primary', async () => {
  const img = image('flip.img');
  cs.luksFormat(img, 'pw', { pbkdf: 'pbkdf2', sectorSize: 4096 });
  const key = cs.volumeKey(img, 'pw');
  const raw = readFileSync(img);
  for (const at of [7, 300, 450, 6000]) raw[at]! ^= 0x10;
  writeFileSync(img, raw.subarray(0, 0x4000), { flag: 'r+' });
  const v = await withImage(img, (dev) => openVolume(dev, Buffer.from('pw')));
  assert.deepEqual(v.volumeKey, key);
  // Destroy the secondary: cryptsetup must now read our repaired primary alone.
  const fixed = readFileSync(img);
  fixed.fill(0, 0x4000, 0x8000);
  writeFileSync(img, fixed.subarray(0, 0x8000), { flag: 'r+' });
  assert.equal(cs.testPassphrase(img, 'pw'), 0);
  assert.deepEqual(cs.volumeKey(img, 'pw'), key);
});

test('both copies damaged: a clear error and not a byte written', async () => {
  const img = image('both.img');
  cs.luksFormat(img, 'pw', { pbkdf: 'pbkdf2' });
  const raw = readFileSync(img);
  raw[300]! ^= 1;
  raw[0x4000 + 300]! ^= 1;
  writeFileSync(img, raw.subarray(0, 0x8000), { flag: 'r+' });
  await withImage(img, async (file) => {
    const { dev, writes } = recordWrites(file);
    await assert.rejects(openVolume(dev, Buffer.from('pw')), (e) => isNbdcryptError(e, 'EBADHDR') && /both LUKS2 header copies are unusable.*checksum/.test(e.message));
    assert.deepEqual(writes, []);
  });
  assert.ok(readFileSync(img).subarray(0, 0x8000).equals(raw.subarray(0, 0x8000)));
});

test('non-default metadata size (64 KiB copies): opens, dumps alike, and the secondary is found by scanning when the primary is gone', async () => {
  const img = image('meta64k.img');
  run(cs.cryptsetup(), ['luksFormat', '--type', 'luks2', '--batch-mode', ...cs.fastPbkdf('pbkdf2'), '--luks2-metadata-size', '64k', '--luks2-keyslots-size', '2m', '--key-file', '-', img], { input: 'm' });
  const key = cs.volumeKey(img, 'm');
  assert.equal(await withImage(img, (dev) => dumpHeader(dev), true), cs.luksDump(img));
  writeFileSync(img, Buffer.alloc(4096), { flag: 'r+' }); // primary binary header wiped
  const v = await withImage(img, (dev) => openVolume(dev, Buffer.from('m')));
  assert.deepEqual(v.volumeKey, key);
  assert.equal(readFileSync(img).subarray(0, 6).toString('latin1'), 'LUKS\u00ba\u00be', 'primary rewritten');
  assert.equal(await withImage(img, (dev) => dumpHeader(dev), true), cs.luksDump(img));
});
