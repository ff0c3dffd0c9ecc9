import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as codec from '../../src/nbd/codec.js';
import { Cmd, CF, Info } from '../../src/nbd/protocol.js';

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
