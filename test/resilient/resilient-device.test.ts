/**
 * ResilientDevice against a scripted in-memory session (scripted-session.ts): the
 * durability rule, replay after a reopen (acknowledgement order, overlapping writes kept in
 * order, before the requests that were waiting), a flush dropping exactly what it covered,
 * --io-timeout wherever a request waits, a changed disk refused, a remote that breaks the
 * protocol after every reopen given up on with backoff, and close() bounded when the remote
 * stalls.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { NbdcryptError, isNbdcryptError } from '../../src/errors.js';
import { CLOSE_DEADLINE_MS, ResilientDevice, type ResilientOptions } from '../../src/resilient/resilient-device.js';
import { MAX_VIOLATIONS } from '../../src/resilient/link-health.js';
import { sleep, waitFor } from '../../peers/tools.js';
import { FakeDisk, ScriptedOpener, type ScriptedSession } from './scripted-session.js';

const SIZE = 1 << 20;
const fill = (n: number, byte: number): Buffer => Buffer.alloc(n, byte);
const settledWithin = async (p: Promise<unknown>, ms: number): Promise<boolean> => Promise.race([p.then(() => true, () => true), sleep(ms).then(() => false)]);
const describeReq = (s: ScriptedSession): string[] => s.received.map((r) => `${r.kind}@${r.offset}`);

describe('ResilientDevice over a scripted session', () => {
  let dev: ResilientDevice | undefined;
  afterEach(async () => {
    await dev?.close();
    dev = undefined;
  });
  const open = async (opts: ResilientOptions = {}): Promise<{ dev: ResilientDevice; opener: ScriptedOpener; remote: FakeDisk }> => {
    const remote = new FakeDisk(SIZE);
    const opener = new ScriptedOpener(remote);
    dev = await ResilientDevice.open(opener, opts);
    return { dev, opener, remote };
  };

  it('resolves a write only after the remote acknowledged it', async () => {
    const { dev, opener } = await open();
    opener.current.mode = 'hold';
    const w = dev.write(0, fill(4096, 1));
    assert.equal(await settledWithin(w, 50), false, 'resolved before the remote answered');
    opener.current.answerAll();
    await w;
    assert.equal(dev.replayBytes, 4096, 'acknowledged, not flushed: kept for replay');
    opener.current.mode = 'auto';
  });

  it('after a drop replays acknowledged unflushed writes in order, then re-sends what got no answer', async () => {
    const { dev, opener, remote } = await open();
    await dev.write(0, fill(4096, 1));
    await dev.write(8192, fill(4096, 2));
    const s0 = opener.current;
    s0.mode = 'hold';
    const w = dev.write(16384, fill(4096, 3));
    const r = dev.read(0, 4096);
    await waitFor('requests at the remote', () => s0.held.length === 2, 2000, 1);
    const unanswered = describeReq(s0).slice(2);
    remote.crash(); // the remote restarts and loses what it never flushed
    s0.die();
    await Promise.all([w, r]);
    assert.equal(opener.sessions.length, 2);
    assert.deepEqual(describeReq(opener.current), ['write@0', 'write@8192', ...unanswered]);
    assert.ok((await r).equals(fill(4096, 1)), 'the read sees the replayed write');
    assert.ok(remote.disk.subarray(8192, 12288).equals(fill(4096, 2)));
    assert.equal(dev.reconnects, 1);
    assert.equal(dev.linkState, 'up');
  });

  it('replays overlapping writes one after the other, in acknowledgement order', async () => {
    const { dev, opener, remote } = await open();
    await dev.write(0, fill(8192, 1));
    await dev.write(4096, fill(4096, 2)); // overlaps the first
    await dev.write(65536, fill(4096, 3));
    opener.mode = 'hold';
    remote.crash();
    opener.current.die();
    await waitFor('the reopen', () => opener.sessions.length === 2 && opener.current.received.length > 0, 2000, 1);
    const s1 = opener.current;
    await sleep(20);
    assert.deepEqual(describeReq(s1), ['write@0'], 'nothing overlapping (or after it) went out before the first was answered');
    s1.answerAll();
    await waitFor('the rest of the replay', () => s1.received.length === 3, 2000, 1);
    s1.answerAll();
    await waitFor('the link', () => dev.linkState === 'up', 2000, 1);
    assert.deepEqual(describeReq(s1), ['write@0', 'write@4096', 'write@65536']);
    assert.ok(remote.disk.subarray(0, 8192).equals(Buffer.concat([fill(4096, 1), fill(4096, 2)])), 'the later write wins');
    s1.mode = 'auto';
  });

  it('a flush drops exactly the writes acknowledged before it was issued', async () => {
    const { dev, opener } = await open();
    await dev.write(0, fill(4096, 1));
    opener.current.mode = 'hold';
    const f = dev.flush();
    const w = dev.write(4096, fill(1000, 2));
    await waitFor('flush and write at the remote', () => opener.current.held.length === 2, 2000, 1);
    const [flushReq, writeReq] = opener.current.held;
    opener.current.answer(writeReq!); // acknowledged while the flush is under way
    await w;
    opener.current.answer(flushReq!);
    await f;
    assert.equal(dev.replayBytes, 1000, 'the write acknowledged after the flush was issued stays');
    opener.current.mode = 'auto';
    await dev.flush();
    assert.equal(dev.replayBytes, 0);
  });

  it('a FUA write is durable at once and never logged', async () => {
    const { dev, remote } = await open();
    await dev.write(0, fill(4096, 9), true);
    assert.equal(dev.replayBytes, 0);
    assert.ok(remote.durable.subarray(0, 4096).equals(fill(4096, 9)));
  });

  it('--io-timeout fails a request the remote never answers, and one held while the link is down', async () => {
    const { dev, opener } = await open({ ioTimeout: 0.2 });
    opener.current.mode = 'hold';
    await assert.rejects(dev.read(0, 4096), (e) => isNbdcryptError(e, 'ETIMEDOUT') && /I\/O timeout of 0\.2 s \(no reply\)/.test((e as Error).message));
    opener.script = () => {
      throw new NbdcryptError('ECONNECT', 'remote unreachable (scripted)');
    };
    opener.current.die(new NbdcryptError('EIO', 'cable pulled'));
    await assert.rejects(dev.write(0, fill(512, 1)), (e) => isNbdcryptError(e, 'ETIMEDOUT') && /link down: remote unreachable/.test((e as Error).message));
    opener.script = () => {};
    await waitFor('the reopen', () => dev.linkState === 'up', 10_000, 5);
    assert.ok((await dev.read(0, 512)).equals(fill(512, 0)), 'the timed-out write was not replayed');
  });

  it('refuses to replay onto a disk whose size changed', async () => {
    const { dev, opener } = await open();
    await dev.write(0, fill(4096, 1));
    opener.facts = { ...opener.facts, size: SIZE / 2 };
    opener.current.die();
    await waitFor('giving up', () => dev.linkState === 'failed', 2000, 1);
    await assert.rejects(dev.read(0, 1), (e) => isNbdcryptError(e, 'EIO') && /size changed from 1048576 to 524288/.test((e as Error).message));
  });

  it(`gives up with EPROTO when the remote breaks the protocol right after each of ${MAX_VIOLATIONS} reopens, backing off between them`, { timeout: 60_000 }, async () => {
    const { dev, opener } = await open();
    // Every new session breaks the protocol as soon as it gets a request.
    opener.script = (s) => {
      s.submit = () => s.die(new NbdcryptError('EPROTO', 'NBD server broke the protocol: reply for unknown cookie 7'));
    };
    opener.current.die(new NbdcryptError('EPROTO', 'NBD server broke the protocol: reply for unknown cookie 3'));
    await assert.rejects(dev.read(0, 4096), (e) => isNbdcryptError(e, 'EPROTO') && /right after each of 10 reconnects/.test((e as Error).message));
    const reopens = opener.opens.slice(1);
    assert.equal(reopens.length, MAX_VIOLATIONS - 1, 'the first violation plus nine after reopening');
    // Timers never fire early, so these lower bounds hold however loaded the machine is.
    const gaps = reopens.slice(1).map((t, i) => t - reopens[i]!);
    gaps.forEach((g, i) => assert.ok(g >= Math.min(100 * 2 ** i, 5000) - 2, `gap ${i} was ${g} ms`));
    const opens = opener.opens.length;
    await sleep(300);
    assert.equal(opener.opens.length, opens, 'no reopen after giving up');
    assert.ok(opener.closed, 'what the sessions shared was released');
  });

  it('close() ends within its deadline when the remote stalls, failing what is left', { timeout: 30_000 }, async () => {
    const { dev, opener } = await open();
    await dev.write(0, fill(4096, 1)); // unflushed: close() tries a final flush
    opener.current.mode = 'hold';
    const r = dev.read(0, 4096);
    const t0 = Date.now();
    await dev.close();
    assert.ok(Date.now() - t0 >= CLOSE_DEADLINE_MS - 50, 'it waited for the flush until the deadline');
    await assert.rejects(r, (e) => isNbdcryptError(e, 'ECLOSED'));
    assert.ok(opener.closed);
  });
});
