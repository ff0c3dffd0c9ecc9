/**
 * The replay log on its own: entries in acknowledgement order with rising sequence numbers,
 * the byte count --replay-limit bounds, a flush dropping exactly what it covered, and
 * pooled payloads going back to the pool when dropped.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BufferPool } from '../../src/block/buffer-pool.js';
import { ReplayLog } from '../../src/resilient/replay-log.js';

describe('ReplayLog', () => {
  it('keeps entries in acknowledgement order with rising sequence numbers and counts payload bytes', () => {
    const log = new ReplayLog();
    assert.equal(log.lastSeq, 0);
    log.add({ kind: 'write', offset: 0, length: 4, data: Buffer.from('abcd') });
    log.add({ kind: 'trim', offset: 8, length: 4096 });
    log.add({ kind: 'write', offset: 2, length: 2, data: Buffer.from('xy') });
    assert.equal(log.size, 3);
    assert.equal(log.bytes, 6, 'only payload bytes count (a trim carries none)');
    assert.deepEqual(log.list().map((e) => [e.seq, e.kind, e.offset]), [[1, 'write', 0], [2, 'trim', 8], [3, 'write', 2]]);
    assert.equal(log.lastSeq, 3);
  });

  it('drops exactly the entries a flush covered, even when more were added while it ran', () => {
    const log = new ReplayLog();
    log.add({ kind: 'write', offset: 0, length: 1, data: Buffer.alloc(1) });
    log.add({ kind: 'write', offset: 1, length: 1, data: Buffer.alloc(1) });
    const covered = log.lastSeq; // a flush is issued here
    log.add({ kind: 'write', offset: 2, length: 100, data: Buffer.alloc(100) });
    log.dropThrough(covered);
    assert.deepEqual(log.list().map((e) => e.offset), [2]);
    assert.equal(log.bytes, 100);
    assert.equal(log.lastSeq, 3, 'sequence numbers are never reused');
    log.clear();
    assert.equal(log.size, 0);
    assert.equal(log.bytes, 0);
  });

  it('stays correct across many entries (compaction) and returns pooled payloads to the pool', () => {
    const requestBuffers = new BufferPool(64 * 1024 * 1024);
    const log = new ReplayLog(requestBuffers);
    for (let i = 0; i < 5000; i++) log.add({ kind: 'write', offset: i, length: 1, data: Buffer.alloc(1) });
    log.dropThrough(4000);
    assert.equal(log.size, 1000);
    assert.equal(log.list()[0]!.seq, 4001);
    log.add({ kind: 'write', offset: 9, length: 1, data: Buffer.alloc(1) });
    assert.equal(log.list().at(-1)!.seq, 5001);

    const idle = requestBuffers.idleBytes;
    const pooled = requestBuffers.acquire(65536);
    log.add({ kind: 'write', offset: 0, length: pooled.length, data: pooled, release: true });
    log.clear();
    assert.equal(requestBuffers.idleBytes, idle + 65536, 'the dropped payload went back to the pool');
  });
});
