/**
 * Plays 12,000 hostile NBD servers against the client handshake step function: random bytes,
 * valid transcripts truncated, bit-flipped, spliced or with fields overwritten by extreme
 * values, and replies built to break a rule (option reply length 2^32-1, export sizes past 2^53
 * and 2^63, block sizes min > preferred > max or not powers of two, repeated and unknown infos,
 * every NBD_REP_ERR_*, unknown reply types, no NBD_INFO_EXPORT). Every run must reach a decision
 * in bounded steps without buffering more than one option reply; a failure must be an
 * NbdcryptError with one short line; a success must carry values the spec allows; where the
 * case knows the answer (an independent re-statement of the rules), it must match. A slice of
 * the cases also goes through the stream driver in random chunks, which must decide the same.
 * Seeded (FUZZ_SEED), so a failure names its seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as codec from '../../src/nbd/codec.js';
import { NbdcryptError } from '../../src/errors.js';
import { clientHandshake } from '../../src/nbd/client-handshake.js';
import { MAX_HANDSHAKE_MESSAGE } from '../../src/nbd/client-handshake-step.js';
import { FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES, Info, MAX_PAYLOAD, Opt, Rep } from '../../src/nbd/protocol.js';
import { exportNameReply, fakeServer, goReply, greeting, infoBlockSize, infoExport, simulate, target, type Outcome } from './client-transcripts.js';
import { prng } from './seeded-random.js';

const seed = Number(process.env.FUZZ_SEED ?? 20261204);
const CASES = 12_000;
const DRIVER_EVERY = 20;

const rnd = prng(seed);
const int = (n: number) => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

const U32_EXTREMES = [0, 1, 2, 3, 511, 512, 1000, 4096, 65536, 65537, 131072, 1 << 25, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const SIZES = [0n, 1n, 4096n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];
const REP_ERRORS = Object.entries(Rep).filter(([k]) => k.startsWith('ERR_')).map(([, v]) => v);

/** What a case expects, when it knows: a regexp for the failure, or "done". */
interface Case {
  kind: string;
  transcript: Buffer;
  expect?: RegExp | 'done' | 'ended';
}

/** The spec's block size rules, restated independently of the code under test. */
function blockSizeOk(min: number, pref: number, max: number): boolean {
  const pow2 = (n: number) => n > 0 && Number.isInteger(Math.log2(n));
  return pow2(min) && min <= 65536 && pow2(pref) && pref >= min && max >= pref;
}

function validTranscript(): Buffer {
  const hs = greeting(pick([FLAG_FIXED_NEWSTYLE, FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES]));
  if (int(4) === 0) return Buffer.concat([hs, goReply(Rep.ERR_UNSUP), exportNameReply(BigInt(int(1 << 30)), int(0x10000), (hs[17]! & FLAG_NO_ZEROES) !== 0)]);
  const parts = [infoExport(BigInt(int(1 << 30)), int(0x10000)), infoBlockSize(512, 4096, 1 << 20), goReply(Rep.INFO, codec.encodeInfoText(Info.NAME, 'disk'))];
  for (let i = parts.length - 1; i > 0; i--) {
    const j = int(i + 1);
    [parts[i], parts[j]] = [parts[j]!, parts[i]!];
  }
  return Buffer.concat([hs, ...parts, goReply(Rep.ACK), bytes(int(3))]);
}

function mutated(): Case {
  const t = Buffer.from(validTranscript());
  switch (int(5)) {
    case 0:
      return { kind: 'truncated', transcript: t.subarray(0, int(t.length)) };
    case 1: {
      for (let n = 1 + int(4); n > 0; n--) t[int(t.length)] ^= 1 << int(8);
      return { kind: 'bit flips', transcript: t };
    }
    case 2: {
      const at = int(t.length - 3);
      t.writeUInt32BE(pick(U32_EXTREMES), at);
      return { kind: 'u32 overwritten', transcript: t };
    }
    case 3: {
      const at = int(t.length);
      return { kind: 'spliced', transcript: Buffer.concat([t.subarray(0, at), bytes(1 + int(40)), t.subarray(at + int(8))]) };
    }
    default: {
      // Repeat or drop a whole reply (repeated infos, missing NBD_INFO_EXPORT, missing ACK).
      const starts = [18];
      while (starts[starts.length - 1]! + 20 <= t.length && t.readUInt32BE(starts[starts.length - 1]! + 8) === Opt.GO) {
        const at = starts[starts.length - 1]!;
        starts.push(at + 20 + t.readUInt32BE(at + 16));
      }
      const i = int(starts.length - 1);
      const [a, b] = [starts[i]!, starts[i + 1]!];
      const reply = t.subarray(a, b);
      const out = int(2) ? Buffer.concat([t.subarray(0, b), reply, t.subarray(b)]) : Buffer.concat([t.subarray(0, a), t.subarray(b)]);
      return { kind: 'reply repeated or dropped', transcript: out };
    }
  }
}

/** Replies each built to break one rule, after a valid greeting; the expected answer is known. */
function crafted(): Case {
  const hs = greeting();
  const exp = infoExport(4096n, 1);
  switch (int(9)) {
    case 0: {
      const h = goReply(pick([Rep.INFO, Rep.ACK, Rep.ERR_POLICY, 77]));
      const len = pick([MAX_HANDSHAKE_MESSAGE - 19, 0x10000000, 0xfffffffe, 0xffffffff]);
      h.writeUInt32BE(len, 16);
      return { kind: 'absurd reply length', transcript: Buffer.concat([hs, h, bytes(int(100))]), expect: new RegExp(`option reply length of ${len} bytes`) };
    }
    case 1: {
      const size = pick(SIZES);
      const ok = size <= BigInt(Number.MAX_SAFE_INTEGER);
      return { kind: 'export size', transcript: Buffer.concat([hs, infoExport(size, 1), goReply(Rep.ACK)]), expect: ok ? 'done' : new RegExp(`export size ${size} in NBD_INFO_EXPORT`) };
    }
    case 2: {
      const size = pick(SIZES);
      const ok = size <= BigInt(Number.MAX_SAFE_INTEGER);
      const t = Buffer.concat([hs, goReply(Rep.ERR_UNSUP), exportNameReply(size, 1, true)]);
      return { kind: 'export-name size', transcript: t, expect: ok ? 'done' : /export size \d+ in the NBD_OPT_EXPORT_NAME reply/ };
    }
    case 3: {
      const [min, pref, max] = [pick(U32_EXTREMES), pick(U32_EXTREMES), pick(U32_EXTREMES)];
      const t = Buffer.concat([hs, exp, infoBlockSize(min, pref, max), goReply(Rep.ACK)]);
      return { kind: 'block sizes', transcript: t, expect: blockSizeOk(min, pref, max) ? 'done' : /inconsistent NBD_INFO_BLOCK_SIZE: (minimum block size|preferred block size|maximum payload) \d+/ };
    }
    case 4: {
      const err = pick(REP_ERRORS);
      const t = Buffer.concat([hs, ...(int(2) ? [exp] : []), goReply(err, bytes(int(50)))]);
      if (err === Rep.ERR_UNSUP) return { kind: 'ERR_UNSUP', transcript: t, expect: 'ended' };
      return { kind: 'NBD_REP_ERR_*', transcript: t, expect: err === Rep.ERR_UNKNOWN ? /has no export named 'disk'/ : /NBD_OPT_GO error NBD_REP_ERR_[A-Z_]+/ };
    }
    case 5: {
      const type = pick([0, Rep.SERVER, Rep.META_CONTEXT, 5 + int(1000), 0x7fffffff]);
      return { kind: 'unknown reply type', transcript: Buffer.concat([hs, exp, goReply(type, bytes(int(20)))]), expect: new RegExp(`unexpected option reply type ${type} `) };
    }
    case 6: {
      const infos = Array.from({ length: int(5) }, () => goReply(Rep.INFO, Buffer.concat([Buffer.from([0, 4 + int(100)]), bytes(int(30))])));
      return { kind: 'no NBD_INFO_EXPORT', transcript: Buffer.concat([hs, ...infos, goReply(Rep.ACK)]), expect: /without NBD_INFO_EXPORT/ };
    }
    case 7: {
      const n = 1 + int(100);
      const more = Array.from({ length: n - 1 }, () => pick([exp, infoBlockSize(512, 4096, 1 << 20)]));
      const t = Buffer.concat([hs, exp, ...more, goReply(Rep.ACK)]);
      return { kind: 'repeated infos', transcript: t, expect: n <= 64 ? 'done' : /more than 64 NBD_REP_INFO replies/ };
    }
    default: {
      const len = pick([0, 1, 2, 11, 13, 15, 64]);
      const info = Buffer.concat([Buffer.from([0, pick([Info.EXPORT, Info.BLOCK_SIZE])]), bytes(len)]).subarray(0, len);
      return { kind: 'odd info length', transcript: Buffer.concat([hs, goReply(Rep.INFO, info), goReply(Rep.ACK)]), expect: /NBD_REP_INFO of \d+ bytes, too short|NBD_INFO_(EXPORT|BLOCK_SIZE) of \d+ bytes instead of/ };
    }
  }
}

function hostileCase(): Case {
  switch (int(4)) {
    case 0:
      return { kind: 'random bytes', transcript: bytes(int(300)) };
    case 1:
      return { kind: 'greeting then random', transcript: Buffer.concat([greeting(), bytes(int(300))]) };
    case 2:
      return mutated();
    default:
      return crafted();
  }
}

/** The contract every outcome must meet, whatever the input. */
function checkOutcome(c: Case, o: Outcome): void {
  // Every step but need-more consumes at least 10 bytes (the shortest message), so the number
  // of steps is bounded by the input, not by anything the server claims.
  assert.ok(o.steps <= 2 * (c.transcript.length / 10) + 4, `${o.steps} steps for ${c.transcript.length} bytes`);
  assert.ok(o.maxNeeded <= MAX_HANDSHAKE_MESSAGE);
  if (o.kind === 'done') {
    const e = o.export!;
    assert.ok(Number.isSafeInteger(e.size) && e.size >= 0, `size ${e.size}`);
    assert.ok(e.flags >= 0 && e.flags <= 0xffff);
    const b = e.blockSize;
    assert.ok(blockSizeOk(b.minimum, b.preferred, b.maximum) && b.maximum <= MAX_PAYLOAD, JSON.stringify(b));
  } else {
    assert.ok(o.error instanceof NbdcryptError, String(o.error));
    assert.ok(['EPROTO', 'ENOEXPORT'].includes(o.error.code), o.error.code);
    assert.doesNotMatch(o.error.message, /[\r\n\u2028\u2029]/);
    assert.ok(o.error.message.length <= 400, `message of ${o.error.message.length} chars`);
    assert.ok(o.error.message.startsWith(target.where), o.error.message);
  }
  if (c.expect === 'done' || c.expect === 'ended') assert.equal(o.kind, c.expect, o.error?.message);
  else if (c.expect) {
    assert.equal(o.kind, 'fail');
    assert.match(o.error!.message, c.expect);
  }
}

/** The stream driver fed the same transcript in random chunks: its verdict must equal the step function's. */
async function viaDriver(c: Case, expected: Outcome): Promise<void> {
  const { stream } = fakeServer();
  const result = clientHandshake(stream, target.exportName, target.where, 10_000).then(
    (info) => ({ info }),
    (error: unknown) => ({ error }),
  );
  for (let at = 0; at < c.transcript.length; ) {
    const n = 1 + int(64);
    stream.push(c.transcript.subarray(at, at + n));
    at += n;
    if (int(4) === 0) await new Promise((r) => setImmediate(r));
  }
  stream.push(null);
  const r = await result;
  stream.destroy();
  if (expected.kind === 'done') {
    assert.ok('info' in r, `driver failed where the step function succeeded: ${'error' in r ? String(r.error) : ''}`);
    assert.deepEqual({ ...r.info, leftover: undefined }, { ...expected.export, leftover: undefined });
    // The driver returns at least the bytes that were there when it decided; later ones go to the connection.
    assert.ok(expected.leftover.subarray(0, r.info.leftover.length).equals(r.info.leftover));
  } else {
    assert.ok('error' in r, 'driver succeeded where the step function failed');
    assert.ok(r.error instanceof NbdcryptError);
    assert.equal(r.error.message, expected.error!.message);
  }
}

test(`client handshake survives ${CASES} hostile servers (seed ${seed})`, async () => {
  const kinds = new Map<string, { cases: number; done: number }>();
  for (let i = 0; i < CASES; i++) {
    const c = hostileCase();
    const chunking = int(3) === 0 ? () => 1 + int(16) : undefined;
    let o: Outcome;
    try {
      o = simulate(c.transcript, chunking);
      checkOutcome(c, o);
      if (i % DRIVER_EVERY === 0) await viaDriver(c, o);
    } catch (e) {
      throw new Error(`seed ${seed} case ${i} (${c.kind}, transcript ${c.transcript.toString('hex').slice(0, 400)}): ${(e as Error).message}`, { cause: e });
    }
    const k = kinds.get(c.kind) ?? { cases: 0, done: 0 };
    k.cases++;
    if (o.kind === 'done') k.done++;
    kinds.set(c.kind, k);
  }
  // The generator must actually reach every kind, and some hostile inputs must still succeed
  // (valid sizes and block sizes), or the checks above prove little.
  assert.equal(kinds.size, 17, [...kinds.keys()].join(', '));
  for (const [kind, k] of kinds) assert.ok(k.cases >= 20, `${kind}: ${k.cases} cases`);
  assert.ok(kinds.get('block sizes')!.done > 0 && kinds.get('export size')!.done > 0);
});
