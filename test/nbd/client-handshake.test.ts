/**
 * The stream driver of the client handshake, against a scripted fake server (an old server
 * without OPT_GO, a wedged one, a broken one; no real server plays these): it writes what the
 * step function asks, hands the bytes after the handshake over, gives up after the handshake
 * timeout, refuses an absurd reply length without waiting for the data, maps a close or a
 * stream error to the right error, and leaves no listeners behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as codec from '../../src/nbd/codec.js';
import { isNbdcryptError } from '../../src/errors.js';
import { clientHandshake } from '../../src/nbd/client-handshake.js';
import { DEFAULT_BLOCK_SIZE } from '../../src/nbd/client-handshake-step.js';
import { FLAG_FIXED_NEWSTYLE, Opt, Rep, TF } from '../../src/nbd/protocol.js';
import { exportNameReply, fakeServer, goReply, greeting, infoBlockSize, infoExport, target } from './client-transcripts.js';

/** Resolves once the client has written at least `n` bytes in total. */
async function written(sent: Buffer[], n: number): Promise<Buffer> {
  for (let i = 0; i < 500; i++) {
    const all = Buffer.concat(sent);
    if (all.length >= n) return all;
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.fail(`the client wrote ${Buffer.concat(sent).length} bytes, expected ${n}`);
}

const listeners = (s: NodeJS.EventEmitter) => ['data', 'end', 'close', 'error'].map((e) => s.listenerCount(e));

test('an old server without OPT_GO: the driver falls back to OPT_EXPORT_NAME and hands over the bytes after it', async () => {
  const { stream, sent } = fakeServer();
  const done = clientHandshake(stream, 'disk', target.where);
  stream.push(greeting(FLAG_FIXED_NEWSTYLE).subarray(0, 9));
  stream.push(greeting(FLAG_FIXED_NEWSTYLE).subarray(9));
  const go = await written(sent, 4 + 16);
  assert.equal(go.readUInt32BE(0), 1, 'C_FIXED_NEWSTYLE only: the server offered no NO_ZEROES');
  assert.equal(codec.decodeOptionHeader(go.subarray(4)).option, Opt.GO);
  stream.push(goReply(Rep.ERR_UNSUP));
  const all = await written(sent, go.length + 16 + 4);
  const h = codec.decodeOptionHeader(all.subarray(go.length));
  assert.deepEqual([h.option, all.subarray(go.length + 16).toString()], [Opt.EXPORT_NAME, 'disk']);
  stream.push(Buffer.concat([exportNameReply(1n << 20n, TF.HAS_FLAGS | TF.SEND_FLUSH, false), Buffer.from('next')]));
  const info = await done;
  assert.deepEqual(info, { size: 1 << 20, flags: TF.HAS_FLAGS | TF.SEND_FLUSH, blockSize: DEFAULT_BLOCK_SIZE, leftover: Buffer.from('next') });
  assert.deepEqual(listeners(stream), [0, 0, 0, 0]);
  stream.destroy();
});

test('OPT_GO with block sizes through the driver', async () => {
  const { stream } = fakeServer();
  const done = clientHandshake(stream, 'disk', target.where);
  stream.push(Buffer.concat([greeting(), infoExport(4096n, TF.HAS_FLAGS), infoBlockSize(4096, 4096, 1 << 20), goReply(Rep.ACK)]));
  assert.deepEqual(await done, { size: 4096, flags: TF.HAS_FLAGS, blockSize: { minimum: 4096, preferred: 4096, maximum: 1 << 20 }, leftover: Buffer.alloc(0) });
  stream.destroy();
});

test('a server that never finishes the handshake: ECONNECT after the handshake timeout, listeners removed', async () => {
  const { stream } = fakeServer();
  const done = clientHandshake(stream, 'disk', target.where, 100);
  stream.push(greeting());
  await assert.rejects(done, (e) => isNbdcryptError(e, 'ECONNECT') && /did not complete the handshake within 0.1 s/.test(e.message));
  assert.deepEqual(listeners(stream), [0, 0, 0, 0]);
  stream.destroy();
});

test('an option reply length of 2^32-1 fails at once, without waiting for the data', async () => {
  const { stream } = fakeServer();
  const done = clientHandshake(stream, 'disk', target.where, 60_000);
  const h = goReply(Rep.INFO);
  h.writeUInt32BE(0xffffffff, 16);
  stream.push(Buffer.concat([greeting(), h, Buffer.alloc(1000)]));
  await assert.rejects(done, (e) => isNbdcryptError(e, 'EPROTO') && /option reply length of 4294967295 bytes/.test(e.message));
  stream.destroy();
});

test('a close during OPT_EXPORT_NAME is ENOEXPORT, a close before it EPROTO, a stream error ECONNECT', async () => {
  const fallback = fakeServer();
  const a = clientHandshake(fallback.stream, 'nope', target.where);
  fallback.stream.push(Buffer.concat([greeting(), goReply(Rep.ERR_UNSUP)]));
  fallback.stream.push(null);
  await assert.rejects(a, (e) => isNbdcryptError(e, 'ENOEXPORT') && /NBD_OPT_EXPORT_NAME 'nope'/.test(e.message));

  const early = fakeServer();
  const b = clientHandshake(early.stream, 'disk', target.where);
  early.stream.push(greeting().subarray(0, 10));
  early.stream.push(null);
  await assert.rejects(b, (e) => isNbdcryptError(e, 'EPROTO') && /closed the connection during the handshake/.test(e.message));

  const broken = fakeServer();
  const c = clientHandshake(broken.stream, 'disk', target.where);
  broken.stream.destroy(new Error('read ECONNRESET'));
  await assert.rejects(c, (e) => isNbdcryptError(e, 'ECONNECT') && /read ECONNRESET/.test(e.message));
});
