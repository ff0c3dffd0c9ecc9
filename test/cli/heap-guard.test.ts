/**
 * The heap guard runs a minor collection once enough short-lived Buffer bytes have been
 * reported to its noteTransientBytes (transient-buffers.ts), not before, and not after it was stopped. Collections are
 * observed as Node reports them (PerformanceObserver 'gc' entries of kind minor, forced).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { HeapGuard } from '../../src/cli/heap-guard.js';
import { sleep } from '../../peers/tools.js';

const MiB = 1024 * 1024;

async function forcedMinorCollections(during: () => void): Promise<number> {
  let n = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const d = (e as unknown as { detail: { kind: number; flags: number } }).detail;
      if (d.kind === constants.NODE_PERFORMANCE_GC_MINOR && (d.flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0) n++;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  during();
  await sleep(200); // the collection runs on setImmediate; the entry is delivered later still
  obs.disconnect();
  return n;
}

test('reported transient bytes trigger one minor collection per threshold, and none once stopped', async () => {
  const guard = new HeapGuard({ limitBytes: 1024 * MiB, youngGcBytes: 4 * MiB });
  const noteTransientBytes = guard.noteTransientBytes;
  assert.equal(await forcedMinorCollections(() => noteTransientBytes(64 * MiB)), 0, 'a guard not yet started collects nothing');
  guard.start();
  try {
    assert.equal(await forcedMinorCollections(() => noteTransientBytes(3 * MiB)), 0, 'below the threshold nothing is collected');
    // 3 + 2 MiB crosses it once; many reports within one turn still give one collection.
    assert.equal(await forcedMinorCollections(() => {
      for (let i = 0; i < 32; i++) noteTransientBytes(64 * 1024);
    }), 1);
  } finally {
    guard.stop();
  }
  assert.equal(await forcedMinorCollections(() => noteTransientBytes(64 * MiB)), 0, 'a stopped guard collects nothing');
});

test('youngGc false (NBDCRYPT_YOUNG_GC=0) leaves the collection to V8', async () => {
  const guard = new HeapGuard({ limitBytes: 1024 * MiB, youngGcBytes: 4 * MiB, youngGc: false });
  guard.start();
  try {
    assert.equal(await forcedMinorCollections(() => guard.noteTransientBytes(64 * MiB)), 0);
  } finally {
    guard.stop();
  }
});
