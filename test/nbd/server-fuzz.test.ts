/**
 * Fuzzes a running in-process NbdServer with well over 10,000 random and mutated handshakes
 * and requests: bad magic, unknown options and commands, huge lengths, offsets past the end,
 * truncated packets, disconnects mid-payload. Every answer is checked against what the spec
 * requires; a sentinel connection must keep working throughout; the server must close every
 * connection we give up on (no hang). Seeded, so a failure names its seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as codec from '../../src/nbd/codec.js';
import { CF, Cmd, Err, IHAVEOPT, Info, MAX_PAYLOAD, Opt, Rep, SIMPLE_REPLY_MAGIC } from '../../src/nbd/protocol.js';
import { NbdServer } from '../../src/nbd/server.js';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { scratchDir } from '../../peers/tools.js';
import { RawConn } from './raw-nbd.js';
import { prng } from './seeded-random.js';

const SIZE = 1 << 20;
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
// The run stops at WANT_CASES; the budget only bounds a pathologically slow machine.
const TIME_BUDGET_MS = 150_000;
const WANT_CASES = 12_000;

interface Fuzzer {
  rnd: () => number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  bytes(n: number): Buffer;
}

function fuzzer(s: number): Fuzzer {
  const rnd = prng(s);
  const int = (n: number) => Math.floor(rnd() * n);
  return {
    rnd,
    int,
    pick: (xs) => xs[int(xs.length)]!,
    bytes: (n) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = int(256);
      return b;
    },
  };
}

const opt = (o: number, data: Buffer = Buffer.alloc(0)) => Buffer.concat([codec.encodeOptionHeader(o, data.length), data]);

type OptionCase = { send: Buffer; expect?: number[]; closes?: boolean };

/** An option the server must answer and survive; `expect` lists the reply types, in order. */
function survivableOption(f: Fuzzer): OptionCase {
  switch (f.int(5)) {
    case 0: {
      const name = f.pick(['disk', 'ro', 'nope', '', 'x'.repeat(f.int(300))]);
      const requests = Array.from({ length: f.int(4) }, () => f.int(6));
      const data = codec.encodeInfoRequest(name, requests);
      if (name === 'disk' || name === 'ro' || name === '') {
        // INFO (not GO, which would end the option phase): EXPORT, NAME if asked, BLOCK_SIZE, ACK.
        return { send: opt(Opt.INFO, data), expect: [Rep.INFO, ...(requests.includes(Info.NAME) ? [Rep.INFO] : []), Rep.INFO, Rep.ACK] };
      }
      return { send: opt(f.pick([Opt.INFO, Opt.GO]), data), expect: [Rep.ERR_UNKNOWN] };
    }
    case 1: // malformed INFO/GO data: length field lies, trailing garbage, too short
      return { send: opt(f.pick([Opt.INFO, Opt.GO]), f.pick([f.bytes(f.int(6)), Buffer.from([0, 0, 1, 0, 0x41, 0, 0])])), expect: [Rep.ERR_INVALID] };
    case 2: {
      const o = f.pick([0, 4, Opt.STARTTLS, Opt.STRUCTURED_REPLY, Opt.LIST_META_CONTEXT, Opt.SET_META_CONTEXT, Opt.EXTENDED_HEADERS, 12 + f.int(1000), 0x80000000 + f.int(1000)]);
      return { send: opt(o, f.bytes(f.int(64))), expect: [Rep.ERR_UNSUP] };
    }
    case 3:
      return { send: opt(Opt.LIST, f.bytes(1 + f.int(20))), expect: [Rep.ERR_INVALID] };
    default:
      return { send: opt(Opt.LIST), expect: [Rep.SERVER, Rep.SERVER, Rep.ACK] };
  }
}

/** How an option phase ends: fatal errors (server closes), truncation or noise (we hang up). */
function finalOption(f: Fuzzer): OptionCase {
  switch (f.int(4)) {
    case 0: // bad option magic
      return { send: f.bytes(16), closes: true };
    case 1: // huge option length
      return { send: codec.encodeOptionHeader(f.int(20), 65537 + f.int(2 ** 31)), expect: [Rep.ERR_TOO_BIG], closes: true };
    case 2: { // a valid sequence truncated at a random point
      const full = Buffer.concat([opt(Opt.LIST), opt(Opt.GO, codec.encodeInfoRequest('disk', [Info.NAME]))]);
      return { send: full.subarray(0, f.int(full.length)) };
    }
    default: { // pure noise, or a mutated valid sequence
      const full = Buffer.concat([opt(Opt.INFO, codec.encodeInfoRequest('disk', [])), opt(Opt.EXPORT_NAME, Buffer.from('disk'))]);
      if (f.rnd() < 0.5) return { send: f.bytes(f.int(80)) };
      for (let i = 0; i < 1 + f.int(3); i++) full[f.int(full.length)] = f.int(256);
      return { send: full };
    }
  }
}

/** One connection: client flags, a chain of options, an ending. Returns the cases it ran. */
async function runHandshakeCase(address: string, f: Fuzzer): Promise<number> {
  const c = await RawConn.open(address);
  const trail: string[] = [];
  try {
    const g = codec.decodeGreeting(await c.read(18));
    assert.equal(g.magic, 0x4e42444d41474943n);
    assert.equal(g.optMagic, IHAVEOPT);
    if (f.rnd() < 0.1) {
      c.send(Buffer.from([0, 0, 0, f.pick([0, 4 << f.int(6)])])); // plain newstyle or unknown flags
      assert.ok(await c.waitClosed(3000), 'server must close on bad client flags');
      return 1;
    }
    c.send(Buffer.from([0, 0, 0, f.pick([1, 3])]));
    const chain = Array.from({ length: 1 + f.int(12) }, () => survivableOption(f));
    if (f.rnd() < 0.7) chain.push(finalOption(f));
    // Options are pipelined in random slices; replies must still come in order.
    const all = Buffer.concat(chain.map((k) => k.send));
    for (let at = 0; at < all.length; ) {
      const m = 1 + f.int(all.length - at);
      c.send(all.subarray(at, at + m));
      at += m;
    }
    for (const k of chain) {
      trail.push(k.send.toString('hex').slice(0, 60));
      for (const type of k.expect ?? []) assert.equal((await c.readOptionReply()).type, type, `option reply type after ${trail.join(' | ')}`);
      if (k.closes) assert.ok(await c.waitClosed(3000), 'server must close after a fatal handshake error');
    }
    // Whatever state it is in, once we hang up the server must let go of the connection.
    c.socket.end();
    assert.ok(await c.waitClosed(3000), `server kept a connection open after the client closed (${trail.join(' | ')})`);
    return chain.length;
  } finally {
    c.destroy();
  }
}

interface Expect {
  error: number;
  data: number;
}

/** One transmission request and the answer the spec requires. */
function requestCase(f: Fuzzer, ro: boolean): { bytes: Buffer; expect: Expect } {
  const len = f.pick([0, 1, 511, 512, 4096, f.int(65536)]);
  const inRange = f.int(SIZE - len + 1);
  const pastEnd = f.pick([SIZE - len + 1 + f.int(1000), SIZE, 2 ** 53 + f.int(1000), 2 ** 63]);
  const hdr = (type: number, offset: number | bigint, length: number, flags = 0) =>
    codec.encodeRequestHeader({ type, flags, cookie: 0n, offset: BigInt(offset), length });
  const w = (error: number) => (ro ? (error === 0 || error === Err.ENOSPC ? Err.EPERM : error) : error);
  switch (f.int(11)) {
    case 0:
      return { bytes: hdr(Cmd.READ, inRange, len, f.pick([0, CF.FUA])), expect: { error: 0, data: len } };
    case 1:
      return { bytes: hdr(Cmd.READ, pastEnd, Math.max(len, 1)), expect: { error: Err.EINVAL, data: 0 } };
    case 2:
      return { bytes: Buffer.concat([hdr(Cmd.WRITE, inRange, len, f.pick([0, CF.FUA])), Buffer.alloc(len, f.int(256))]), expect: { error: w(0), data: 0 } };
    case 3:
      return { bytes: Buffer.concat([hdr(Cmd.WRITE, pastEnd, Math.max(len, 1)), Buffer.alloc(Math.max(len, 1), f.int(256))]), expect: { error: w(Err.ENOSPC), data: 0 } };
    case 4:
      return { bytes: hdr(8 + f.int(65528), f.int(2 ** 40), f.int(2 ** 32)), expect: { error: Err.EINVAL, data: 0 } };
    case 5:
      return { bytes: hdr(Cmd.READ, inRange, len, f.pick([CF.NO_HOLE, CF.DF, CF.REQ_ONE, 1 << (5 + f.int(11))])), expect: { error: Err.EINVAL, data: 0 } };
    case 6:
      return { bytes: hdr(Cmd.READ, 0, MAX_PAYLOAD + 1 + f.int(2 ** 31)), expect: { error: Err.EINVAL, data: 0 } };
    case 7:
      return { bytes: hdr(Cmd.WRITE_ZEROES, inRange, len, f.pick([0, CF.NO_HOLE, CF.FUA, CF.FAST_ZERO])), expect: { error: w(0), data: 0 } };
    case 8:
      return { bytes: hdr(Cmd.TRIM, inRange, len), expect: { error: w(0), data: 0 } };
    case 9:
      return { bytes: hdr(f.pick([Cmd.FLUSH, Cmd.CACHE]), f.pick([0, inRange]), f.pick([0, len])), expect: { error: 0, data: 0 } };
    default:
      return { bytes: hdr(Cmd.BLOCK_STATUS, inRange, len), expect: { error: Err.EINVAL, data: 0 } };
  }
}

type Ending = 'disc' | 'bad-magic' | 'truncated-header' | 'mid-payload' | 'huge-write' | 'hangup';

async function runTransmissionCase(address: string, f: Fuzzer): Promise<number> {
  const ro = f.rnd() < 0.2;
  const c = await RawConn.open(address);
  try {
    await c.go(ro ? 'ro' : 'disk');
    const n = 1 + f.int(120);
    const expected = new Map<bigint, Expect>();
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const k = requestCase(f, ro);
      const cookie = BigInt(f.int(2 ** 30)) * 4096n + BigInt(i);
      k.bytes.writeBigUInt64BE(cookie, 8);
      expected.set(cookie, k.expect);
      parts.push(k.bytes);
    }
    const ending: Ending = f.pick(['disc', 'disc', 'bad-magic', 'truncated-header', 'mid-payload', 'huge-write', 'hangup']);
    const tail = codec.encodeRequestHeader({ type: Cmd.WRITE, flags: 0, cookie: 1n, offset: 0n, length: 4096 });
    if (ending === 'disc') parts.push(codec.encodeRequestHeader({ type: Cmd.DISC, flags: 0, cookie: 0n, offset: 0n, length: 0 }));
    if (ending === 'bad-magic') parts.push(f.bytes(28));
    if (ending === 'truncated-header') parts.push(tail.subarray(0, 1 + f.int(27)));
    if (ending === 'mid-payload') parts.push(tail, f.bytes(f.int(4096)));
    if (ending === 'huge-write') {
      const cookie = 2n;
      parts.push(codec.encodeRequestHeader({ type: Cmd.WRITE, flags: 0, cookie, offset: 0n, length: MAX_PAYLOAD + 1 + f.int(2 ** 31) }));
      expected.set(cookie, { error: Err.EINVAL, data: 0 });
    }
    // Send in random slices, so the parser sees every split of headers and payloads.
    const all = Buffer.concat(parts);
    const minSlice = Math.ceil(all.length / 300); // bounds the number of writes per connection
    for (let at = 0; at < all.length; ) {
      const m = Math.max(minSlice, 1 + f.int(Math.min(all.length - at, f.pick([1, 7, 28, 512, 70_000]))));
      c.send(all.subarray(at, at + m));
      at += m;
    }
    // Abrupt endings: the client hangs up; replies already sent are still checked below.
    const abrupt = ending === 'truncated-header' || ending === 'mid-payload' || ending === 'hangup';
    if (abrupt) c.socket.end();
    const mustAnswerAll = ending === 'disc' || ending === 'huge-write';
    const seen = new Set<bigint>();
    while (seen.size < expected.size) {
      let r;
      try {
        r = await c.readSimpleReply(5000);
      } catch (e) {
        if (!mustAnswerAll && c.closed) break;
        throw e;
      }
      assert.equal(r.magic, SIMPLE_REPLY_MAGIC);
      const want = expected.get(r.cookie);
      assert.ok(want, `reply for unknown cookie ${r.cookie}`);
      assert.ok(!seen.has(r.cookie), `second reply for cookie ${r.cookie}`);
      seen.add(r.cookie);
      assert.equal(r.error, want.error, `errno for a request answered with cookie ${r.cookie}`);
      if (r.error === 0 && want.data > 0) await c.read(want.data);
    }
    if (mustAnswerAll) assert.equal(seen.size, expected.size);
    assert.ok(await c.waitClosed(5000), `server did not close after '${ending}'`);
    return n + 1;
  } finally {
    c.destroy();
  }
}

test(`fuzz: ≥10,000 hostile handshakes and requests, in-process server (seed ${seed})`, { timeout: 200_000 }, async (t) => {
  const dir = scratchDir();
  const disk = new MemoryDevice(SIZE);
  const server = new NbdServer({
    exports: [
      { name: 'disk', device: disk },
      { name: 'ro', device: new MemoryDevice(SIZE, { readOnly: true }) },
    ],
  });
  const address = await server.listen(`unix:${join(dir.path, 'fuzz.sock')}`);
  const sentinel = await RawConn.open(address);
  await sentinel.go('disk');
  let cases = 0;
  let sentinelChecks = 0;
  const deadline = Date.now() + TIME_BUDGET_MS;
  try {
    const worker = async (w: number) => {
      for (let i = 0; cases < WANT_CASES && Date.now() < deadline; i++) {
        const caseSeed = seed * 1000 + w * 100_000 + i;
        const f = fuzzer(caseSeed);
        try {
          cases += f.rnd() < 0.35 ? await runHandshakeCase(address, f) : await runTransmissionCase(address, f);
        } catch (e) {
          throw new Error(`fuzz case failed (FUZZ_SEED=${seed}, case seed ${caseSeed}): ${(e as Error).message}`, { cause: e });
        }
      }
    };
    const checker = async () => {
      // Other connections keep working while the fuzzing goes on.
      const pattern = Buffer.alloc(4096);
      while (cases < WANT_CASES && Date.now() < deadline) {
        pattern.fill(sentinelChecks & 0xff);
        const cookie = BigInt(sentinelChecks);
        sentinel.request(Cmd.WRITE, cookie, SIZE - 4096, 4096, 0, pattern);
        sentinel.request(Cmd.READ, cookie + (1n << 40n), SIZE - 4096, 4096);
        const a = await sentinel.readSimpleReply();
        assert.equal(a.error, 0);
        // Fuzz writes may land on the same block between our write and read: only check the reply.
        const b = await sentinel.readSimpleReply();
        assert.deepEqual([b.error, b.cookie], [0, cookie + (1n << 40n)]);
        await sentinel.read(4096);
        sentinelChecks++;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await Promise.all([...Array.from({ length: 16 }, (_, w) => worker(w)), checker()]);
    t.diagnostic(`${cases} cases in ${TIME_BUDGET_MS - (deadline - Date.now())} ms, ${server.stats.connections} connections, ${sentinelChecks} sentinel checks`);
    assert.ok(cases >= 10_000, `only ${cases} fuzz cases ran within ${TIME_BUDGET_MS} ms (seed ${seed})`);
    assert.ok(sentinelChecks > 10, 'the sentinel connection must have been exercised');
    // After all that, a fresh client still gets served and the counters balance.
    const c = await RawConn.open(address);
    await c.go('disk');
    c.request(Cmd.READ, 9n, 0, 512);
    assert.equal((await c.readSimpleReply()).error, 0);
    c.destroy();
    assert.equal(server.stats.inFlight, 0);
  } finally {
    sentinel.destroy();
    await server.close(5000);
    dir.remove();
  }
  assert.equal(server.connectionCount, 0);
});
