/**
 * The client handshake step function on well-formed transcripts (OPT_GO with block sizes,
 * the ERR_UNSUP fallback to OPT_EXPORT_NAME with and without zero padding, byte-at-a-time
 * delivery, the project's own server step function as the peer) and on each kind of broken
 * reply, checking that every error is one line naming the field at fault.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as codec from '../../src/nbd/codec.js';
import { DEFAULT_BLOCK_SIZE, MAX_GO_INFOS, clientHandshakeEnded, clientHandshakeStep, initialClientHandshakeState } from '../../src/nbd/client-handshake-step.js';
import { handshakeStep, initialHandshakeState, type HandshakeState } from '../../src/nbd/handshake.js';
import { NbdcryptError } from '../../src/errors.js';
import { FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES, IHAVEOPT, Info, MAX_PAYLOAD, Opt, Rep, TF } from '../../src/nbd/protocol.js';
import { exportNameReply, goReply, greeting, infoBlockSize, infoExport, simulate, target } from './client-transcripts.js';

const FLAGS = TF.HAS_FLAGS | TF.SEND_FLUSH | TF.SEND_FUA;
const goAnswer = (size = 1n << 30n, ...extra: Buffer[]) => Buffer.concat([infoExport(size, FLAGS), ...extra, goReply(Rep.ACK)]);

/** Splits what the client sent into its flags and options (decoded with the codec). */
function clientMessages(sent: Buffer[]): { flags: number; options: { option: number; data: Buffer }[] } {
  const all = Buffer.concat(sent);
  const options = [];
  for (let at = 4; at < all.length; ) {
    const h = codec.decodeOptionHeader(all.subarray(at));
    assert.equal(h.magic, IHAVEOPT);
    options.push({ option: h.option, data: all.subarray(at + 16, at + 16 + h.length) });
    at += 16 + h.length;
  }
  return { flags: all.readUInt32BE(0), options };
}

function failure(transcript: Buffer): NbdcryptError {
  const o = simulate(transcript);
  assert.equal(o.kind, 'fail', `expected a failure, got ${o.kind}`);
  assert.ok(o.error instanceof NbdcryptError);
  assert.doesNotMatch(o.error.message, /[\r\n]/);
  assert.ok(o.error.message.startsWith(target.where), o.error.message);
  return o.error;
}

test('OPT_GO: sends fixed-newstyle + NO_ZEROES and GO asking for NBD_INFO_BLOCK_SIZE; takes EXPORT and BLOCK_SIZE; leaves the rest', () => {
  const tail = Buffer.from('transmission bytes');
  const name = goReply(Rep.INFO, codec.encodeInfoText(Info.NAME, 'disk'));
  const o = simulate(Buffer.concat([greeting(), goAnswer(1n << 30n, name, infoBlockSize(512, 4096, 1 << 20)), tail]));
  assert.equal(o.kind, 'done');
  assert.deepEqual(o.export, { size: 1 << 30, flags: FLAGS, blockSize: { minimum: 512, preferred: 4096, maximum: 1 << 20 } });
  assert.deepEqual(o.leftover, tail);
  const m = clientMessages(o.sent);
  assert.equal(m.flags, 3);
  assert.equal(m.options.length, 1);
  assert.equal(m.options[0]!.option, Opt.GO);
  assert.deepEqual(codec.decodeInfoRequest(m.options[0]!.data), { name: 'disk', requests: [Info.BLOCK_SIZE] });
});

test('OPT_GO without NO_ZEROES offered, without NBD_INFO_BLOCK_SIZE: plain client flags, default block sizes, no limit capped', () => {
  const o = simulate(Buffer.concat([greeting(FLAG_FIXED_NEWSTYLE), goAnswer(4096n)]));
  assert.deepEqual(o.export, { size: 4096, flags: FLAGS, blockSize: DEFAULT_BLOCK_SIZE });
  assert.equal(clientMessages(o.sent).flags, 1);
  const unlimited = simulate(Buffer.concat([greeting(), goAnswer(4096n, infoBlockSize(1, 4096, 0xffffffff))]));
  assert.deepEqual(unlimited.export?.blockSize, { minimum: 1, preferred: 4096, maximum: MAX_PAYLOAD });
  const huge = simulate(Buffer.concat([greeting(), goAnswer(4096n, infoBlockSize(512, 2 ** 31, 0xffffffff))]));
  assert.deepEqual(huge.export?.blockSize, { minimum: 512, preferred: MAX_PAYLOAD, maximum: MAX_PAYLOAD }, 'preferred capped with the maximum');
});

test('ERR_UNSUP to OPT_GO falls back to OPT_EXPORT_NAME: 10-byte reply with NO_ZEROES, 134 without', () => {
  for (const noZeroes of [true, false]) {
    const hs = greeting(noZeroes ? FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES : FLAG_FIXED_NEWSTYLE);
    const reply = exportNameReply(8192n, TF.HAS_FLAGS | TF.READ_ONLY, noZeroes);
    const o = simulate(Buffer.concat([hs, goReply(Rep.ERR_UNSUP, Buffer.from('GO? never heard of it')), reply, Buffer.from([7])]));
    assert.equal(o.kind, 'done');
    assert.deepEqual(o.export, { size: 8192, flags: TF.HAS_FLAGS | TF.READ_ONLY, blockSize: DEFAULT_BLOCK_SIZE });
    assert.deepEqual(o.leftover, Buffer.from([7]), 'the zero padding is not leftover');
    const m = clientMessages(o.sent);
    assert.deepEqual(m.options.map((x) => x.option), [Opt.GO, Opt.EXPORT_NAME]);
    assert.equal(m.options[1]!.data.toString(), 'disk');
    // One byte short of the reply: the handshake waits, and a close then means "no such export".
    const short = simulate(Buffer.concat([hs, goReply(Rep.ERR_UNSUP), reply.subarray(0, reply.length - 1)]));
    assert.equal(short.kind, 'ended');
    assert.equal(short.error?.code, 'ENOEXPORT');
    assert.match(short.error!.message, /NBD_OPT_EXPORT_NAME 'disk'/);
  }
});

test('byte-at-a-time delivery reaches the same result, and need-more asks for exactly the next message', () => {
  const t = Buffer.concat([greeting(), goAnswer(1n << 40n, infoBlockSize(4096, 4096, 1 << 25)), Buffer.from('xyz')]);
  const whole = simulate(t);
  const bytewise = simulate(t, () => 1);
  assert.deepEqual(bytewise.export, whole.export);
  assert.deepEqual(bytewise.leftover, whole.leftover);
  for (let n = 0; n < t.length - 3; n++) assert.equal(simulate(t.subarray(0, n)).kind, 'ended', `prefix of ${n} bytes`);
  assert.equal(bytewise.maxNeeded, 20 + 14, 'an INFO_BLOCK_SIZE reply is the largest message');
  assert.deepEqual(clientHandshakeStep(initialClientHandshakeState, greeting().subarray(0, 5), target).next, { kind: 'need-more', bytes: 18 });
});

test("the client step function negotiates with the project's own server step function", () => {
  const bs = { minimum: 4096, preferred: 4096, maximum: 1 << 20 };
  const exports = [{ name: 'disk', description: '', size: 1 << 24, transmissionFlags: FLAGS, blockSize: bs }];
  let server: HandshakeState = initialHandshakeState;
  let client = initialClientHandshakeState;
  let toServer = Buffer.alloc(0);
  let toClient = greeting();
  let result;
  for (let i = 0; i < 20 && !result; i++) {
    const c = clientHandshakeStep(client, toClient, target);
    client = c.state;
    toClient = toClient.subarray(c.consumed);
    toServer = Buffer.concat([toServer, ...c.send]);
    if (c.next.kind === 'done') result = c.next.export;
    assert.notEqual(c.next.kind, 'fail');
    const s = handshakeStep(server, toServer, exports);
    server = s.state;
    toServer = toServer.subarray(s.consumed);
    toClient = Buffer.concat([toClient, ...s.replies]);
  }
  assert.deepEqual(result, { size: 1 << 24, flags: FLAGS, blockSize: bs });
});

test('greeting errors: bad magic, plain newstyle', () => {
  const bad = greeting();
  bad[3] ^= 1;
  assert.match(failure(bad).message, /not a newstyle NBD server \(bad greeting magic\)/);
  assert.match(failure(greeting(FLAG_NO_ZEROES)).message, /does not speak fixed-newstyle/);
});

test('export size beyond 2^53 - 1: one line naming the export size and where it came from', () => {
  assert.equal(simulate(Buffer.concat([greeting(), goAnswer(2n ** 53n - 1n)])).export?.size, Number.MAX_SAFE_INTEGER);
  for (const size of [2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]) {
    const e = failure(Buffer.concat([greeting(), goAnswer(size)]));
    assert.equal(e.code, 'EPROTO');
    assert.equal(e.message, `${target.where} sent export size ${size} in NBD_INFO_EXPORT, beyond the 2^53 - 1 bytes nbdcrypt can address; use a smaller export`);
    const viaExportName = failure(Buffer.concat([greeting(), goReply(Rep.ERR_UNSUP), exportNameReply(size, 1, true)]));
    assert.match(viaExportName.message, new RegExp(`export size ${size} in the NBD_OPT_EXPORT_NAME reply`));
  }
});

test('inconsistent NBD_INFO_BLOCK_SIZE: the message names the field and the rule it breaks', () => {
  const cases: [number, number, number, RegExp][] = [
    [3, 4096, 1 << 20, /minimum block size 3 is not a power of two/],
    [0, 4096, 1 << 20, /minimum block size 0 is not a power of two/],
    [1 << 17, 1 << 17, 1 << 20, /minimum block size 131072 exceeds 65536/],
    [512, 1000, 1 << 20, /preferred block size 1000 is not a power of two/],
    [4096, 512, 1 << 20, /preferred block size 512 is below the minimum block size 4096/],
    [512, 4096, 1024, /maximum payload 1024 is below the preferred block size 4096/],
    [8192, 4096, 2048, /preferred block size 4096 is below the minimum block size 8192/],
  ];
  for (const [min, pref, max, re] of cases) {
    const e = failure(Buffer.concat([greeting(), goAnswer(1n << 20n, infoBlockSize(min, pref, max))]));
    assert.match(e.message, /sent inconsistent NBD_INFO_BLOCK_SIZE: /);
    assert.match(e.message, re);
  }
});

test('malformed option replies: bad magic, wrong option, absurd length (refused before buffering), short or odd-sized infos', () => {
  const badMagic = goReply(Rep.ACK);
  badMagic[0] = 0xff;
  assert.match(failure(Buffer.concat([greeting(), badMagic])).message, /option reply with bad magic 0xff03e889045565a9/);
  assert.match(failure(Buffer.concat([greeting(), codec.encodeOptionReply(Opt.LIST, Rep.ACK)])).message, /reply for option 3 while NBD_OPT_GO \(7\) was pending/);
  const huge = goReply(Rep.INFO);
  huge.writeUInt32BE(0xffffffff, 16);
  const o = simulate(Buffer.concat([greeting(), huge]));
  assert.match(o.error!.message, /option reply length of 4294967295 bytes to NBD_OPT_GO, more than the 65536 accepted/);
  assert.ok(o.maxNeeded <= 20, 'did not wait for the announced data');
  assert.match(failure(Buffer.concat([greeting(), goReply(Rep.INFO, Buffer.from([0]))])).message, /NBD_REP_INFO of 1 bytes, too short/);
  assert.match(failure(Buffer.concat([greeting(), goReply(Rep.INFO, Buffer.alloc(13))])).message, /NBD_INFO_EXPORT of 13 bytes instead of 12/);
  assert.match(failure(Buffer.concat([greeting(), goReply(Rep.INFO, Buffer.from([0, 3, 0, 0]))])).message, /NBD_INFO_BLOCK_SIZE of 4 bytes instead of 14/);
});

test('unknown infos are ignored, repeated ones take the last value, endless ones are cut off', () => {
  const unknown = goReply(Rep.INFO, Buffer.from([0x12, 0x34, 1, 2, 3]));
  const o = simulate(Buffer.concat([greeting(), infoExport(1n, 0), unknown, infoBlockSize(512, 512, 512), goAnswer(2n << 20n, infoBlockSize(1, 4096, 1 << 20))]));
  assert.deepEqual(o.export, { size: 2 << 20, flags: FLAGS, blockSize: { minimum: 1, preferred: 4096, maximum: 1 << 20 } });
  const endless = Buffer.concat([greeting(), ...Array.from({ length: MAX_GO_INFOS + 1 }, () => infoExport(4096n, 1)), goReply(Rep.ACK)]);
  assert.match(failure(endless).message, /more than 64 NBD_REP_INFO replies to NBD_OPT_GO/);
  const justEnough = Buffer.concat([greeting(), ...Array.from({ length: MAX_GO_INFOS }, () => infoExport(4096n, 1)), goReply(Rep.ACK)]);
  assert.equal(simulate(justEnough).kind, 'done');
});

test('error replies: ERR_UNKNOWN is ENOEXPORT, others name the error, server text is kept on one line', () => {
  const unknown = failure(Buffer.concat([greeting(), goReply(Rep.ERR_UNKNOWN, Buffer.from('no such\nexport'))]));
  assert.equal(unknown.code, 'ENOEXPORT');
  assert.equal(unknown.message, `${target.where} has no export named 'disk': no such?export; check the export name in the target`);
  const policy = failure(Buffer.concat([greeting(), infoExport(4096n, 1), goReply(Rep.ERR_POLICY, Buffer.from('go away\r\n\u2028'))]));
  assert.equal(policy.code, 'EPROTO');
  assert.match(policy.message, /refused export 'disk' \(NBD_OPT_GO error NBD_REP_ERR_POLICY\): go away\?\?\?$/);
  assert.match(failure(Buffer.concat([greeting(), goReply(0x8000abcd)])).message, /NBD_OPT_GO error 0x8000abcd/);
  assert.match(failure(Buffer.concat([greeting(), goReply(Rep.SERVER)])).message, /unexpected option reply type 2 to NBD_OPT_GO/);
  assert.match(failure(Buffer.concat([greeting(), goReply(Rep.ACK)])).message, /acknowledged NBD_OPT_GO without NBD_INFO_EXPORT/);
});

test('a stream that ends mid-handshake: EPROTO before the fallback, ENOEXPORT during it, ECONNECT on a stream error', () => {
  assert.equal(simulate(greeting().subarray(0, 7)).error?.code, 'EPROTO');
  assert.match(simulate(Buffer.concat([greeting(), infoExport(4096n, 1)])).error!.message, /closed the connection during the handshake/);
  const reset = clientHandshakeEnded(initialClientHandshakeState, target, new Error('read ECONNRESET'));
  assert.equal(reset.code, 'ECONNECT');
  assert.match(reset.message, /connection failed during the NBD handshake: read ECONNRESET/);
  assert.equal(clientHandshakeEnded({ stage: 'export-name', noZeroes: true }, target, new Error('x')).code, 'ENOEXPORT');
});
