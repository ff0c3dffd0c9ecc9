/**
 * The resilient NBD client against remotes that misbehave (peers/hostile-nbd-server.ts).
 * Each mode ends in bounded time with a clear one-line error or a recovery, never a hang,
 * a crash or a tight reconnect loop: a reply that stops half-way fails with --io-timeout
 * or, without one, counts as a dropped link after the stall timeout; protocol violations
 * are retried with backoff and given up on after MAX_VIOLATIONS reconnects, logged once
 * per cause; error replies fail only their request; a nonsensical handshake is refused.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { openNbdDevice, type NbdDeviceOptions } from '../../src/backend/remote-target.js';
import { isNbdcryptError } from '../../src/errors.js';
import { MAX_VIOLATIONS } from '../../src/resilient/link-health.js';
import { CLOSE_DEADLINE_MS, type ResilientDevice } from '../../src/resilient/resilient-device.js';
import { tcpTransport } from '../../src/transport/tcp.js';
import { startHostileNbdServer, type HostileMode, type HostileNbdServer } from '../../peers/hostile-nbd-server.js';
import { sleep } from '../../peers/tools.js';

/** Rejects if `p` has not settled after `ms`: the old client hung forever on some of these. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Lines written to standard error while `fn` runs (the log goes there). */
async function captureLog<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const original = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return (original as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    return { value: await fn(), lines };
  } finally {
    process.stderr.write = original;
  }
}

describe('hostile NBD remotes', () => {
  const servers: HostileNbdServer[] = [];
  const devices: ResilientDevice[] = [];
  afterEach(async () => {
    for (const d of devices.splice(0)) await d.close().catch(() => undefined);
  });
  after(async () => {
    for (const s of servers.splice(0)) await s.stop();
  });
  const start = async (mode: HostileMode, misbehave?: number): Promise<HostileNbdServer> => {
    const s = await startHostileNbdServer({ mode, misbehave });
    servers.push(s);
    return s;
  };
  const connect = async (s: HostileNbdServer, opts: NbdDeviceOptions = {}): Promise<ResilientDevice> => {
    const d = await openNbdDevice(tcpTransport({ host: s.host, port: s.port }), s.exportName, { name: `hostile ${s.mode}`, ...opts });
    devices.push(d);
    return d;
  };

  it('a reply that stops half-way fails with ETIMEDOUT after --io-timeout', async () => {
    const s = await start('stall-mid-reply');
    const dev = await connect(s, { ioTimeout: 1 });
    await assert.rejects(within(dev.read(0, 65536), 20_000, 'the read'), (e) => isNbdcryptError(e, 'ETIMEDOUT') && /I\/O timeout of 1 s/.test((e as Error).message));
  });

  for (const mode of ['stall-mid-reply', 'stall-before-reply'] as const) {
    it(`${mode}: without --io-timeout the stalled connection counts as dropped after the stall timeout; the retry succeeds`, async () => {
      const s = await start(mode, 1);
      s.disk.fill(7, 0, 65536);
      const dev = await connect(s, { stallTimeout: 1 });
      const { value: data, lines } = await captureLog(() => within(dev.read(0, 65536), 20_000, 'the read'));
      assert.ok(data.equals(Buffer.alloc(65536, 7)));
      assert.equal(dev.reconnects, 1);
      assert.equal(s.connections, 2);
      assert.ok(lines.some((l) => /sent nothing for 1 s while 1 requests waited/.test(l)), lines.join('\n'));
    });
  }

  it('close() ends within its deadline while the remote stalls, failing the request in flight', async () => {
    const s = await start('stall-before-reply');
    const dev = await connect(s);
    const w = dev.write(0, Buffer.alloc(4096, 1));
    const r = dev.read(0, 4096);
    await sleep(100);
    await within(dev.close(), CLOSE_DEADLINE_MS + 5000, 'close()');
    await assert.rejects(w, (e) => isNbdcryptError(e, 'ECLOSED'));
    await assert.rejects(r, (e) => isNbdcryptError(e, 'ECLOSED'));
  });

  it(`protocol violations are retried with backoff and given up on after ${MAX_VIOLATIONS} reconnects, each cause logged once`, { timeout: 90_000 }, async () => {
    const modes = ['wrong-handle', 'structured-garbage', 'bad-magic'] as const;
    const { value: outcomes, lines } = await captureLog(() =>
      Promise.all(
        modes.map(async (mode) => {
          const s = await start(mode);
          const dev = await connect(s);
          const t0 = Date.now();
          const err = await within(dev.read(0, 4096).then(() => undefined, (e: unknown) => e), 60_000, `the read from ${mode}`);
          return { mode, s, err, seconds: (Date.now() - t0) / 1000 };
        }),
      ),
    );
    for (const { mode, s, err, seconds } of outcomes) {
      assert.ok(isNbdcryptError(err, 'EPROTO'), `${mode}: ${String(err)}`);
      assert.match((err as Error).message, /right after each of 10 reconnects \(last: NBD server broke the protocol/);
      assert.equal((err as Error).message.split('\n').length, 1);
      assert.equal(s.connections, MAX_VIOLATIONS, `${mode}: one connection per attempt`);
      // 100 + 200 + ... ms of backoff between the attempts: no tight loop.
      assert.ok(seconds > 5, `${mode}: gave up after ${seconds} s`);
      const drops = lines.filter((l) => l.includes(`hostile ${mode}: link dropped`));
      assert.equal(drops.length, 1, `${mode}: the same cause is logged once, not per attempt:\n${drops.join('\n')}`);
      assert.equal(lines.filter((l) => l.includes(`hostile ${mode}: giving up`)).length, 1);
    }
  });

  it('a remote that answers every request twice is given up on as well', { timeout: 90_000 }, async () => {
    const s = await start('duplicate-reply');
    const dev = await connect(s);
    let failure: unknown;
    for (let i = 0; i < 2 * MAX_VIOLATIONS && !failure; i++) failure = await within(dev.read(0, 4096).then(() => undefined, (e: unknown) => e), 60_000, 'a read');
    assert.ok(isNbdcryptError(failure, 'EPROTO'), String(failure));
    assert.ok(s.connections <= MAX_VIOLATIONS + 1, `${s.connections} connections`);
  });

  it('with --io-timeout a remote that keeps breaking the protocol fails requests after the timeout, naming the cause', async () => {
    const s = await start('bad-magic');
    const dev = await connect(s, { ioTimeout: 1 });
    await assert.rejects(within(dev.read(0, 4096), 20_000, 'the read'), (e) => isNbdcryptError(e, 'ETIMEDOUT') && /link down: NBD server broke the protocol: reply magic 0xdeadbeef/.test((e as Error).message));
    assert.ok(s.connections <= 5, `${s.connections} connections within about a second`);
  });

  it('a remote that closes mid-reply every time is reconnected to with backoff until --io-timeout', async () => {
    const s = await start('short-reply-close');
    const dev = await connect(s, { ioTimeout: 2 });
    await assert.rejects(within(dev.read(0, 65536), 20_000, 'the read'), (e) => isNbdcryptError(e, 'ETIMEDOUT') && /link down/.test((e as Error).message));
    const n = s.connections;
    assert.ok(n >= 3 && n <= 7, `${n} connections in 2 s: backed off, not a tight loop`);
  });

  it('error replies fail only their request, with one clear line; the link stays up', async () => {
    const s = await start('error-writes');
    const dev = await connect(s);
    await assert.rejects(dev.write(4096, Buffer.alloc(4096, 1)), (e) => isNbdcryptError(e, 'EIO') && /^hostile error-writes: remote write at offset 4096 length 4096 failed with EIO$/.test((e as Error).message));
    await assert.rejects(dev.flush(), (e) => isNbdcryptError(e, 'EIO') && /remote flush .* failed with EIO/.test((e as Error).message));
    assert.ok((await dev.read(0, 4096)).equals(Buffer.alloc(4096)));
    assert.equal(dev.reconnects, 0);
    assert.equal(s.connections, 1);
  });

  it('an export size beyond 2^63 and nonsense block sizes are refused at connect, once', async () => {
    for (const [mode, why] of [['huge-size', /export size 9223372036854779904 .*beyond the 2\^53 - 1 bytes/], ['bad-block-sizes', /inconsistent NBD_INFO_BLOCK_SIZE: minimum block size 3 is not a power of two/]] as const) {
      const s = await start(mode);
      await assert.rejects(within(connect(s), 10_000, 'connect'), (e) => isNbdcryptError(e, 'EPROTO') && why.test((e as Error).message));
      assert.equal(s.connections, 1, `${mode}: not retried`);
    }
  });
});
