import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as codec from '../../src/nbd/codec.js';
import { handshakeStep, initialHandshakeState, type ExportInfo, type HandshakeState } from '../../src/nbd/handshake.js';
import { CLIENT_FIXED_NEWSTYLE, CLIENT_NO_ZEROES, Info, MAX_OPTION_LENGTH, Opt, Rep, TF } from '../../src/nbd/protocol.js';
import { NbdServer, transmissionFlagsOf } from '../../src/nbd/server.js';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { scratchDir } from '../../peers/tools.js';
import { RawConn } from './raw-nbd.js';

const bs = { minimum: 512, preferred: 4096, maximum: 32 << 20 };
const exports: ExportInfo[] = [
  { name: 'disk', description: 'the disk', size: 1 << 20, transmissionFlags: TF.HAS_FLAGS | TF.SEND_FLUSH, blockSize: bs },
  { name: 'other', description: '', size: 4096, transmissionFlags: TF.HAS_FLAGS | TF.READ_ONLY, blockSize: bs },
];
const opts: HandshakeState = { stage: 'options', noZeroes: true };
const opt = (o: number, data: Buffer = Buffer.alloc(0)) => Buffer.concat([codec.encodeOptionHeader(o, data.length), data]);
const replyTypes = (rs: Buffer[]) => rs.map((r) => codec.decodeOptionReplyHeader(r).type);

test('client flags: fixed newstyle accepted, NO_ZEROES remembered, unknown bits or plain newstyle close', () => {
  const ok = handshakeStep(initialHandshakeState, Buffer.from([0, 0, 0, CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES]), exports);
  assert.deepEqual(ok.state, { stage: 'options', noZeroes: true });
  assert.equal(ok.next.kind, 'continue');
  assert.equal(handshakeStep(initialHandshakeState, Buffer.from([0, 0, 0, 1]), exports).state.stage, 'options');
  assert.equal(handshakeStep(initialHandshakeState, Buffer.from([0, 0, 0, 1 | 4]), exports).next.kind, 'close');
  assert.equal(handshakeStep(initialHandshakeState, Buffer.from([0, 0, 0, 0]), exports).next.kind, 'close');
  assert.equal(handshakeStep(initialHandshakeState, Buffer.from([0, 0]), exports).next.kind, 'need-more');
});

test('partial options wait for more; bad magic and oversized options close', () => {
  const full = opt(Opt.LIST);
  for (let n = 0; n < full.length; n++) assert.equal(handshakeStep(opts, full.subarray(0, n), exports).next.kind, 'need-more');
  const bad = Buffer.from(full);
  bad[0] ^= 0xff;
  assert.equal(handshakeStep(opts, bad, exports).next.kind, 'close');
  const huge = handshakeStep(opts, codec.encodeOptionHeader(Opt.GO, MAX_OPTION_LENGTH + 1), exports);
  assert.equal(huge.next.kind, 'close');
  assert.deepEqual(replyTypes(huge.replies), [Rep.ERR_TOO_BIG]);
});

test('LIST lists every export then ACKs; data is ERR_INVALID', () => {
  const r = handshakeStep(opts, opt(Opt.LIST), exports);
  assert.deepEqual(replyTypes(r.replies), [Rep.SERVER, Rep.SERVER, Rep.ACK]);
  assert.deepEqual(codec.decodeServerReply(r.replies[0]!.subarray(20)), { name: 'disk', description: 'the disk' });
  assert.deepEqual(replyTypes(handshakeStep(opts, opt(Opt.LIST, Buffer.from('x')), exports).replies), [Rep.ERR_INVALID]);
});

test('INFO and GO: EXPORT always, NAME/DESCRIPTION on request, BLOCK_SIZE; errors for unknown and malformed', () => {
  const info = handshakeStep(opts, opt(Opt.INFO, codec.encodeInfoRequest('disk', [Info.NAME, Info.DESCRIPTION, 999])), exports);
  assert.equal(info.next.kind, 'continue');
  const decoded = info.replies.map((r) => (codec.decodeOptionReplyHeader(r).type === Rep.INFO ? codec.decodeInfoReply(r.subarray(20)) : 'ACK'));
  assert.deepEqual(decoded, [
    { type: Info.EXPORT, size: 1n << 20n, flags: TF.HAS_FLAGS | TF.SEND_FLUSH },
    { type: Info.NAME, text: 'disk' },
    { type: Info.DESCRIPTION, text: 'the disk' },
    { type: Info.BLOCK_SIZE, ...bs },
    'ACK',
  ]);
  const go = handshakeStep(opts, opt(Opt.GO, codec.encodeInfoRequest('other', [])), exports);
  assert.deepEqual(go.next, { kind: 'transmit', exportName: 'other' });
  const dflt = handshakeStep(opts, opt(Opt.GO, codec.encodeInfoRequest('', [])), exports);
  assert.deepEqual(dflt.next, { kind: 'transmit', exportName: 'disk' });
  const unknown = handshakeStep(opts, opt(Opt.GO, codec.encodeInfoRequest('nope', [])), exports);
  assert.deepEqual(replyTypes(unknown.replies), [Rep.ERR_UNKNOWN]);
  assert.equal(unknown.next.kind, 'continue');
  const malformed = handshakeStep(opts, opt(Opt.GO, Buffer.from([0, 0, 0, 9, 1])), exports);
  assert.deepEqual(replyTypes(malformed.replies), [Rep.ERR_INVALID]);
});

test('unsupported options get ERR_UNSUP and negotiation continues', () => {
  for (const o of [Opt.STARTTLS, Opt.STRUCTURED_REPLY, Opt.LIST_META_CONTEXT, Opt.SET_META_CONTEXT, Opt.EXTENDED_HEADERS, 0, 4, 12345, 0xffffffff]) {
    const r = handshakeStep(opts, opt(o), exports);
    assert.deepEqual(replyTypes(r.replies), [Rep.ERR_UNSUP], `option ${o}`);
    assert.equal(r.next.kind, 'continue');
  }
});

test('EXPORT_NAME: 10 or 134 bytes depending on NO_ZEROES; unknown export closes; ABORT ACKs and closes', () => {
  const short = handshakeStep(opts, opt(Opt.EXPORT_NAME, Buffer.from('disk')), exports);
  assert.equal(short.replies[0]!.length, 10);
  assert.deepEqual(short.next, { kind: 'transmit', exportName: 'disk' });
  const long = handshakeStep({ stage: 'options', noZeroes: false }, opt(Opt.EXPORT_NAME, Buffer.from('other')), exports);
  assert.equal(long.replies[0]!.length, 134);
  assert.equal(long.replies[0]!.readBigUInt64BE(0), 4096n);
  assert.equal(handshakeStep(opts, opt(Opt.EXPORT_NAME, Buffer.from('nope')), exports).next.kind, 'close');
  const abort = handshakeStep(opts, opt(Opt.ABORT), exports);
  assert.deepEqual(replyTypes(abort.replies), [Rep.ACK]);
  assert.equal(abort.next.kind, 'close');
});

test('a live server negotiates LIST, INFO, GO and EXPORT_NAME over a socket', async () => {
  const dir = scratchDir();
  const server = new NbdServer({
    exports: [
      { name: 'disk', description: 'main', device: new MemoryDevice(1 << 20) },
      { name: 'ro', device: new MemoryDevice(8192, { readOnly: true }) },
    ],
  });
  try {
    const address = await server.listen(`unix:${join(dir.path, 's.sock')}`);
    const c = await RawConn.open(address);
    const greeting = codec.decodeGreeting(await c.read(18));
    assert.equal(greeting.flags, 3);
    c.send(Buffer.from([0, 0, 0, CLIENT_FIXED_NEWSTYLE]));
    c.send(opt(Opt.LIST));
    assert.equal((await c.readOptionReply()).type, Rep.SERVER);
    assert.equal((await c.readOptionReply()).type, Rep.SERVER);
    assert.equal((await c.readOptionReply()).type, Rep.ACK);
    c.send(opt(Opt.STRUCTURED_REPLY));
    assert.equal((await c.readOptionReply()).type, Rep.ERR_UNSUP);
    c.send(opt(Opt.EXPORT_NAME, Buffer.from('ro')));
    const reply = await c.read(134);
    assert.equal(reply.readBigUInt64BE(0), 8192n);
    assert.ok(reply.readUInt16BE(8) & TF.READ_ONLY);
    c.destroy();

    const g = await RawConn.open(address);
    assert.deepEqual(await g.go('disk'), { size: 1 << 20, flags: transmissionFlagsOf(new MemoryDevice(1).caps) });
    g.destroy();
  } finally {
    await server.close();
    dir.remove();
  }
});

test('ExportSpec block sizes are advertised and validated against the spec rules', async () => {
  const bad = [
    { minimum: 3, preferred: 4096, maximum: 1 << 25 },
    { minimum: 512, preferred: 256, maximum: 1 << 25 },
    { minimum: 1 << 17, preferred: 1 << 17, maximum: 1 << 25 },
    { minimum: 512, preferred: 4096, maximum: 1024 },
  ];
  for (const blockSize of bad) {
    assert.throws(() => new NbdServer({ exports: [{ name: 'd', device: new MemoryDevice(4096, { blockSize }) }] }), /block sizes/);
  }
  assert.throws(() => new NbdServer({ exports: [] }), /at least one export/);
  const dev = new MemoryDevice(1 << 20);
  assert.throws(() => new NbdServer({ exports: [{ name: 'd', device: dev }, { name: 'd', device: dev }] }), /used twice/);
  const dir = scratchDir();
  const server = new NbdServer({ exports: [{ name: 'd', device: new MemoryDevice(1 << 20, { blockSize: { minimum: 4096, preferred: 65536, maximum: 1 << 20 } }) }] });
  try {
    const c = await RawConn.open(await server.listen(`unix:${join(dir.path, 's.sock')}`));
    await c.read(18);
    c.send(Buffer.from([0, 0, 0, 3]));
    c.send(opt(Opt.INFO, codec.encodeInfoRequest('d', [Info.BLOCK_SIZE])));
    const infos = [];
    for (let r = await c.readOptionReply(); r.type !== Rep.ACK; r = await c.readOptionReply()) infos.push(codec.decodeInfoReply(r.data));
    assert.deepEqual(infos[1], { type: Info.BLOCK_SIZE, minimum: 4096, preferred: 65536, maximum: 1 << 20 });
    c.destroy();
  } finally {
    await server.close();
    dir.remove();
  }
});
