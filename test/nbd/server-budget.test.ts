/**
 * The server-wide in-flight budget under pressure: nbdcopy (4 connections × 64 requests of
 * 256 KiB) against an in-process server whose budget admits only a few requests at a time,
 * over a device that answers after random delays, so the budget is spent and given back many
 * thousands of times, by connections racing each other. Every connection must be woken when
 * bytes come back (a lost wake-up hangs nbdcopy), and the copy must be exact both ways.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { NbdServer } from '../../src/nbd/server.js';
import { nbdcopyAsync } from '../../peers/nbdcopy.js';
import { scratchDir } from '../../peers/tools.js';
import { SlowDevice } from './slow-device.js';

const SIZE = 64 * 1024 * 1024;
const BUDGET = 256 * 1024;

test('a tight server-wide budget wakes every waiting connection: nbdcopy in and out completes and matches', { timeout: 180_000 }, async () => {
  const dir = scratchDir('nbdcrypt-budget-');
  const dev = new SlowDevice(new MemoryDevice(SIZE), () => randomInt(0, 3));
  const server = new NbdServer({ exports: [{ name: 'disk', device: dev }], maxTotalInFlightBytes: BUDGET });
  try {
    const sock = join(dir.path, 'nbd.sock');
    await server.listen(`unix:${sock}`);
    const uri = `nbd+unix:///disk?socket=${sock}`;
    const src = join(dir.path, 'src.bin');
    const out = join(dir.path, 'out.bin');
    const data = randomBytes(SIZE);
    writeFileSync(src, data);
    // Asynchronous: the server runs in this process, so a blocking spawn would stall it.
    await nbdcopyAsync(src, uri, { timeoutMs: 60_000 });
    await nbdcopyAsync(uri, out, { timeoutMs: 60_000 });
    assert.ok(readFileSync(out).equals(data), 'the copy read back differs from what was written');
    // Admission stops once the budget is spent: a few 256 KiB requests per connection at most.
    assert.ok(dev.peak <= 4 * (BUDGET / (256 * 1024)) + 4, `${dev.peak} device calls ran at once under a ${BUDGET}-byte budget`);
  } finally {
    await server.close(5000);
    dir.remove();
  }
});
