import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as codec from '../../src/nbd/codec.js';
import {
  CF,
  Cmd,
  Err,
  IHAVEOPT,
  Info,
  NBDMAGIC,
  OPTION_HEADER_SIZE,
  OPTION_REPLY_HEADER_SIZE,
  OPT_REPLY_MAGIC,
  Opt,
  REQUEST_HEADER_SIZE,
  REQUEST_MAGIC,
  Rep,
  SIMPLE_REPLY_MAGIC,
  SIMPLE_REPLY_SIZE,
  TF,
} from '../../src/nbd/protocol.js';

test('request header round-trips', () => {
  const r = { flags: CF.FUA, type: Cmd.WRITE, cookie: 0x0102030405060708n, offset: 1n << 40n, length: 4096 };
  const b = codec.encodeRequestHeader(r);
  assert.equal(b.length, 28);
  assert.deepEqual(codec.decodeRequestHeader(b), { magic: 0x25609513, ...r });
});

test('OPT_GO payload round-trips and rejects trailing garbage', () => {
  const b = codec.encodeInfoRequest('disk', [Info.BLOCK_SIZE, Info.NAME]);
  assert.deepEqual(codec.decodeInfoRequest(b), { name: 'disk', requests: [Info.BLOCK_SIZE, Info.NAME] });
  assert.equal(codec.decodeInfoRequest(Buffer.concat([b, Buffer.from([0])])), undefined);
  assert.equal(codec.decodeInfoRequest(b.subarray(0, 5)), undefined);
});

test('INFO_EXPORT and INFO_BLOCK_SIZE decode what they encode', () => {
  assert.deepEqual(codec.decodeInfoReply(codec.encodeInfoExport(1 << 30, 0x4d)), { type: Info.EXPORT, size: 1n << 30n, flags: 0x4d });
  const bs = { minimum: 512, preferred: 4096, maximum: 32 << 20 };
  assert.deepEqual(codec.decodeInfoReply(codec.encodeInfoBlockSize(bs)), { type: Info.BLOCK_SIZE, ...bs });
});

test('greeting, option header and option reply: exact bytes, u32 fields above 2^31 kept unsigned', () => {
  const g = codec.encodeGreeting(3);
  assert.equal(g.toString('latin1', 0, 16), 'NBDMAGICIHAVEOPT');
  assert.deepEqual(codec.decodeGreeting(g), { magic: NBDMAGIC, optMagic: IHAVEOPT, flags: 3 });
  const h = codec.encodeOptionHeader(0xfffffffe, 0xffffffff);
  assert.equal(h.length, OPTION_HEADER_SIZE);
  assert.deepEqual(codec.decodeOptionHeader(h), { magic: IHAVEOPT, option: 0xfffffffe, length: 0xffffffff });
  const r = codec.encodeOptionReply(Opt.GO, Rep.ERR_UNSUP, Buffer.from('no'));
  assert.deepEqual(codec.decodeOptionReplyHeader(r), { magic: OPT_REPLY_MAGIC, option: Opt.GO, type: Rep.ERR_UNSUP, length: 2 });
  assert.equal(r.subarray(OPTION_REPLY_HEADER_SIZE).toString(), 'no');
  assert.equal(codec.encodeOptionReply(Opt.ABORT, Rep.ACK).length, OPTION_REPLY_HEADER_SIZE);
});

test('OPT_INFO/GO payload whose name length or request count lies is malformed', () => {
  const b = codec.encodeInfoRequest('disk', [Info.BLOCK_SIZE]);
  const longName = Buffer.from(b);
  longName.writeUInt32BE(0xffffffff, 0);
  assert.equal(codec.decodeInfoRequest(longName), undefined);
  const moreRequests = Buffer.from(b);
  moreRequests.writeUInt16BE(2, 8);
  assert.equal(codec.decodeInfoRequest(moreRequests), undefined);
  assert.deepEqual(codec.decodeInfoRequest(codec.encodeInfoRequest('', [])), { name: '', requests: [] });
});

test('NBD_REP_INFO: NAME/DESCRIPTION text, unknown types passed on, wrong lengths of EXPORT/BLOCK_SIZE refused', () => {
  assert.deepEqual(codec.decodeInfoReply(codec.encodeInfoText(Info.NAME, 'dïsk')), { type: Info.NAME, text: 'dïsk' });
  assert.deepEqual(codec.decodeInfoReply(codec.encodeInfoText(Info.DESCRIPTION, '')), { type: Info.DESCRIPTION, text: '' });
  assert.deepEqual(codec.decodeInfoReply(Buffer.from([0x12, 0x34, 9])), { type: 0x1234, unknown: true });
  assert.equal(codec.decodeInfoReply(Buffer.from([0])), undefined);
  const exp = codec.encodeInfoExport(4096, 1);
  assert.equal(codec.decodeInfoReply(exp.subarray(0, 11)), undefined);
  assert.equal(codec.decodeInfoReply(Buffer.concat([exp, Buffer.from([0])])), undefined);
  const bs = codec.encodeInfoBlockSize({ minimum: 1, preferred: 4096, maximum: 0xffffffff });
  assert.equal(codec.decodeInfoReply(bs.subarray(0, 13)), undefined);
  assert.deepEqual(codec.decodeInfoReply(bs), { type: Info.BLOCK_SIZE, minimum: 1, preferred: 4096, maximum: 0xffffffff });
});

test('EXPORT_NAME reply is 10 bytes with NO_ZEROES, else 134 ending in zeroes', () => {
  const short = codec.encodeExportNameReply(2 ** 40, TF.HAS_FLAGS | TF.READ_ONLY, true);
  assert.equal(short.length, 10);
  assert.equal(short.readBigUInt64BE(0), 2n ** 40n);
  assert.equal(short.readUInt16BE(8), TF.HAS_FLAGS | TF.READ_ONLY);
  const long = codec.encodeExportNameReply(2 ** 40, 1, false);
  assert.equal(long.length, 134);
  assert.ok(long.subarray(10).equals(Buffer.alloc(124)));
});

test('NBD_REP_SERVER round-trips with and without description; a lying name length is malformed', () => {
  assert.deepEqual(codec.decodeServerReply(codec.encodeServerReply('disk', 'main disk')), { name: 'disk', description: 'main disk' });
  assert.deepEqual(codec.decodeServerReply(codec.encodeServerReply('disk')), { name: 'disk', description: '' });
  const lie = codec.encodeServerReply('disk');
  lie.writeUInt32BE(5, 0);
  assert.equal(codec.decodeServerReply(lie), undefined);
  assert.equal(codec.decodeServerReply(Buffer.from([0, 0, 0])), undefined);
});

test('request header and simple reply at an offset inside a larger buffer; u32 length and error kept unsigned', () => {
  const b = Buffer.alloc(3 + REQUEST_HEADER_SIZE + SIMPLE_REPLY_SIZE, 0xee);
  const r = { flags: CF.FUA | CF.NO_HOLE, type: Cmd.WRITE_ZEROES, cookie: 2n ** 64n - 1n, offset: 2n ** 63n, length: 0xffffffff };
  codec.writeRequestHeader(b, 3, r);
  assert.equal(b[2], 0xee, 'bytes before the header untouched');
  assert.deepEqual(codec.decodeRequestHeader(b, 3), { magic: REQUEST_MAGIC, ...r });
  codec.writeSimpleReply(b, 3 + REQUEST_HEADER_SIZE, { error: 0xffffffff, cookie: 7n });
  assert.deepEqual(codec.decodeSimpleReply(b, 3 + REQUEST_HEADER_SIZE), { magic: SIMPLE_REPLY_MAGIC, error: 0xffffffff, cookie: 7n });
  assert.deepEqual(codec.decodeRequestHeader(b, 3), { magic: REQUEST_MAGIC, ...r }, 'the reply did not overwrite the header');
  const s = codec.encodeSimpleReply({ error: Err.EIO, cookie: 1n });
  assert.equal(s.length, SIMPLE_REPLY_SIZE);
  assert.deepEqual(codec.decodeSimpleReply(s), { magic: SIMPLE_REPLY_MAGIC, error: Err.EIO, cookie: 1n });
});
