/**
 * The sector lock table: overlapping ranges exclude each other when one is exclusive, take
 * effect in arrival order (no starvation), disjoint ranges and shared holders run together,
 * and the work per request does not grow with the number of requests queued on one sector
 * (counted in the table's own operation counter, not timed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SectorLocks, type SectorLock } from '../../src/crypt/sector-locks.js';

/** Lets every settled promise's callbacks run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** Tracks which locks are ready (their `ready` settled or undefined). */
function watch(lock: SectorLock): { lock: SectorLock; isReady: () => boolean } {
  let ready = lock.ready === undefined;
  void lock.ready?.then(() => (ready = true));
  return { lock, isReady: () => ready };
}

test('overlapping exclusive ranges exclude each other; shared ranges and disjoint ranges run together', async () => {
  const t = new SectorLocks();
  const a = watch(t.acquire(0, 4, true));
  const b = watch(t.acquire(3, 6, true)); // overlaps a at sector 3
  const c = watch(t.acquire(4, 8, true)); // disjoint from a, overlaps b
  const d = watch(t.acquire(10, 12, false));
  const e = watch(t.acquire(10, 12, false)); // shared with d
  await settle();
  assert.deepEqual([a, b, c, d, e].map((x) => x.isReady()), [true, false, false, true, true]);
  a.lock.release();
  await settle();
  assert.deepEqual([b, c].map((x) => x.isReady()), [true, false]);
  b.lock.release();
  await settle();
  assert.ok(c.isReady());
  for (const x of [c, d, e]) x.lock.release();
  assert.equal(t.size, 0);
  await t.drain();
});

test('arrival order: a writer queued behind readers is not overtaken by later readers', async () => {
  const t = new SectorLocks();
  const r1 = watch(t.acquire(0, 1, false));
  const w = watch(t.acquire(0, 1, true));
  const r2 = watch(t.acquire(0, 1, false));
  const w2 = watch(t.acquire(0, 1, true));
  await settle();
  assert.deepEqual([r1, w, r2, w2].map((x) => x.isReady()), [true, false, false, false]);
  r1.lock.release();
  await settle();
  assert.deepEqual([w, r2, w2].map((x) => x.isReady()), [true, false, false]);
  w.lock.release();
  await settle();
  assert.deepEqual([r2, w2].map((x) => x.isReady()), [true, false]);
  r2.lock.release();
  await settle();
  assert.ok(w2.isReady());
  w2.lock.release();
  assert.equal(t.size, 0);
});

test('random ranges: holders never conflict, conflicting pairs run in arrival order, all finish', async () => {
  let seed = 12345;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
  for (let round = 0; round < 20; round++) {
    const t = new SectorLocks();
    type E = { id: number; start: number; end: number; x: boolean; ready: boolean; done: boolean; lock: SectorLock };
    const all: E[] = [];
    const conflict = (p: E, q: E) => p.start < q.end && q.start < p.end && (p.x || q.x);
    let finished = 0;
    for (let step = 0; step < 400; step++) {
      if (all.length < 200 && rnd(3) > 0) {
        const start = rnd(40);
        const e: E = { id: all.length, start, end: start + 1 + rnd(rnd(4) === 0 ? 30 : 3), x: rnd(2) === 0, ready: false, done: false, lock: undefined as never };
        e.lock = t.acquire(e.start, e.end, e.x);
        if (e.lock.ready === undefined) e.ready = true;
        else void e.lock.ready.then(() => (e.ready = true));
        all.push(e);
      }
      await settle();
      const running = all.filter((e) => e.ready && !e.done);
      for (const p of running) {
        for (const q of running) if (p !== q) assert.ok(!conflict(p, q), `entries ${p.id} and ${q.id} run together`);
        // Every earlier conflicting entry must be done already.
        for (const q of all) if (q.id < p.id && conflict(p, q)) assert.ok(q.done, `entry ${p.id} runs before earlier ${q.id}`);
      }
      if (running.length > 0 && rnd(2) === 0) {
        const e = running[rnd(running.length)]!;
        e.done = true;
        e.lock.release();
        finished++;
      }
    }
    for (let guard = 0; finished < all.length && guard < 10_000; guard++) {
      await settle();
      for (const e of all.filter((x) => x.ready && !x.done)) {
        e.done = true;
        e.lock.release();
        finished++;
      }
    }
    assert.equal(finished, all.length, 'some entries never became ready');
    assert.equal(t.size, 0);
  }
});

/** Work the table did for `n` requests queued on one sector, then released in order. */
async function workFor(n: number, pattern: (i: number) => { start: number; end: number; exclusive: boolean }): Promise<number> {
  const t = new SectorLocks();
  const locks: SectorLock[] = [];
  for (let i = 0; i < n; i++) {
    const p = pattern(i);
    locks.push(t.acquire(p.start, p.end, p.exclusive));
  }
  for (const l of locks) {
    if (l.ready) await l.ready;
    l.release();
  }
  assert.equal(t.size, 0);
  return t.operations;
}

test('the work per request does not grow with the number of requests waiting on the same sector', async () => {
  const patterns: Record<string, (i: number) => { start: number; end: number; exclusive: boolean }> = {
    'sub-sector writes into one sector': () => ({ start: 7, end: 8, exclusive: true }),
    'reads and writes mixed on one sector': (i) => ({ start: 7, end: 8, exclusive: i % 3 === 0 }),
    'ranges that overlap their neighbours': (i) => ({ start: i % 16, end: (i % 16) + 4, exclusive: true }),
  };
  for (const [name, p] of Object.entries(patterns)) {
    const small = (await workFor(500, p)) / 500;
    const large = (await workFor(4000, p)) / 4000;
    assert.ok(large <= small * 1.5 + 1, `${name}: ${small.toFixed(1)} operations per request with 500 queued, ${large.toFixed(1)} with 4000`);
  }
});
