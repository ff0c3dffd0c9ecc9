/**
 * `nbdcrypt serve --unencrypted` judged by other implementations: nbdinfo reports what we
 * advertise, qemu-io's pattern reads verify aligned and unaligned I/O, write-zeroes, discard
 * and flush, on a file target and over both unix and TCP listeners.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, ftruncateSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nbdinfoJson, nbdinfoList } from '../../peers/nbdinfo.js';
import { qemuIo } from '../../peers/qemu-io.js';
import { startNbdcrypt, nbdUri, type NbdcryptProc } from '../../peers/nbdcrypt.js';
import { scratchDir } from '../../peers/tools.js';

const SIZE = 64 << 20;
const dir = scratchDir();
const image = join(dir.path, 'disk.img');
let srv: NbdcryptProc;

before(async () => {
  const fd = openSync(image, 'w');
  ftruncateSync(fd, SIZE);
  closeSync(fd);
  srv = await startNbdcrypt(
    ['serve', '--unencrypted', `file:${image}`, '--name', 'vol', '--listen', `unix:${join(dir.path, 'nbd.sock')}`, '--listen', 'tcp:127.0.0.1:0'],
    { listeners: 2 },
  );
});

after(async () => {
  await srv?.stop();
  dir.remove();
});

test('serve prints one listening line per listener, unix first, TCP with its resolved port', () => {
  assert.equal(srv.addresses[0], `unix:${join(dir.path, 'nbd.sock')}`);
  assert.match(srv.addresses[1]!, /^tcp:127\.0\.0\.1:\d+$/);
  assert.doesNotMatch(srv.addresses[1]!, /:0$/);
});

test('nbdinfo --json reports size, flags and block sizes', () => {
  for (const address of srv.addresses) {
    const info = nbdinfoJson(nbdUri(address, 'vol'));
    assert.equal(info.protocol, 'newstyle-fixed');
    assert.equal(info.structured, false);
    const e = info.exports[0]!;
    assert.equal(e['export-name'], 'vol');
    assert.equal(e['export-size'], SIZE);
    assert.equal(e.is_read_only, false);
    assert.equal(e.can_flush, true);
    assert.equal(e.can_fua, true);
    assert.equal(e.can_trim, true);
    assert.equal(e.can_zero, true);
    assert.equal(e.can_multi_conn, true);
    assert.equal(e.can_cache, true);
    assert.equal(e.block_size_minimum, 512);
    assert.equal(e.block_size_preferred, 4096);
    assert.equal(e.block_size_maximum, 32 << 20);
  }
});

test('nbdinfo --list lists the export', () => {
  const list = nbdinfoList(nbdUri(srv.address, ''));
  assert.deepEqual(
    list.exports.map((e) => e['export-name']),
    ['vol'],
  );
});

test('qemu-io: aligned and unaligned pattern writes and reads verify, over unix and TCP', () => {
  const uri = srv.uri('vol');
  qemuIo(uri, [
    'write -P 0x11 0 64k',
    'write -P 0x22 1 1', // a single unaligned byte
    'write -P 0x33 1000 511', // 511 bytes inside a block
    'write -P 0x44 4000 200', // across the 4 KiB boundary
    'write -P 0x55 1M 1M',
    'flush',
  ]);
  qemuIo(nbdUri(srv.addresses[1]!, 'vol'), [
    'read -P 0x11 0 1',
    'read -P 0x22 1 1',
    'read -P 0x11 2 998',
    'read -P 0x33 1000 511',
    'read -P 0x11 1511 2489',
    'read -P 0x44 4000 200',
    'read -P 0x11 4200 61336',
    'read -P 0x55 1M 1M',
  ]);
  // A failing pattern check must be noticed (the helper must be able to fail).
  assert.throws(() => qemuIo(uri, ['read -P 0x99 1M 4k']), /Pattern verification failed|failed/);
});

test('qemu-io: write-zeroes, discard and flush', () => {
  const uri = srv.uri('vol');
  qemuIo(uri, ['write -P 0x66 8M 256k', 'write -z 8M 4k', 'write -z 8200k 3', 'flush', 'read -P 0 8M 4k', 'read -P 0x66 8196k 4k']);
  qemuIo(uri, ['read -P 0 8200k 3', 'read -P 0x66 8203k 1k']);
  qemuIo(uri, ['discard 16M 1M', 'flush', 'write -P 0x77 16M 4k', 'read -P 0x77 16M 4k']);
  // What qemu-io wrote is in the file the server serves (flush = fdatasync).
  const img = readFileSync(image);
  assert.equal(img[1], 0x22);
  assert.equal(img[(1 << 20) + 5], 0x55);
  assert.ok(img.subarray(8 << 20, (8 << 20) + 4096).every((b) => b === 0));
});
