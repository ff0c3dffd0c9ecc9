/**
 * nbdcopy (4 connections × 64 requests in flight, multi-conn) copies 1 GiB of random data
 * into `nbdcrypt serve --unencrypted` on a sparse file and back out; all checksums agree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { nbdcopy } from '../../peers/nbdcopy.js';
import { startNbdcrypt } from '../../peers/nbdcrypt.js';
import { scratchDir } from '../../peers/tools.js';

const SIZE = 1 << 30;
const CHUNK = 8 << 20;

function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(CHUNK);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

test('nbdcopy 1 GiB of random data in and out with --connections 4 --requests 64', { timeout: 300_000 }, async () => {
  const dir = scratchDir();
  const src = join(dir.path, 'random.bin');
  const image = join(dir.path, 'disk.img');
  const out = join(dir.path, 'out.bin');
  const fd = openSync(src, 'w');
  const buf = Buffer.allocUnsafe(CHUNK);
  for (let at = 0; at < SIZE; at += CHUNK) writeSync(fd, randomFillSync(buf));
  closeSync(fd);
  const img = openSync(image, 'w');
  ftruncateSync(img, SIZE); // sparse
  closeSync(img);
  const srv = await startNbdcrypt(['serve', '--unencrypted', `file:${image}`, '--listen', `unix:${join(dir.path, 'nbd.sock')}`]);
  try {
    nbdcopy(src, srv.uri(), { connections: 4, requests: 64 });
    nbdcopy(srv.uri(), out, { connections: 4, requests: 64 });
    const want = sha256File(src);
    assert.equal(sha256File(out), want, 'data copied back out differs');
    assert.equal(sha256File(image), want, 'the served file differs');
  } finally {
    assert.equal(await srv.stop(), 0, 'serve must exit 0 on SIGTERM');
    dir.remove();
  }
});
