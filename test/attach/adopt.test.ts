// A kernel nbd device attached over netlink talks NBD on a socketpair with no handshake: the
// server must serve such a socket in the transmission phase from its first byte. Checked here
// with a real socketpair from the native addon, the way serve --attach makes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { NbdServer } from '../../src/nbd/server.js';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { decodeSimpleReply, encodeRequestHeader } from '../../src/nbd/codec.js';
import { Cmd, SIMPLE_REPLY_SIZE, TF } from '../../src/nbd/protocol.js';
import { loadNative, nativeLoadError } from '../../src/native-addon.js';

async function readExactly(s: Socket, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let have = 0;
  while (have < n) {
    const chunk = s.read(Math.min(n - have, s.readableLength) || undefined) as Buffer | null;
    if (chunk) {
      parts.push(chunk);
      have += chunk.length;
      continue;
    }
    await Promise.race([once(s, 'readable'), new Promise((_, rej) => setTimeout(() => rej(new Error(`timed out with ${have} of ${n} bytes`)), 5000))]);
  }
  return Buffer.concat(parts).subarray(0, n);
}

test('an adopted socketpair is served with no handshake: write, read back, flush, disconnect', async () => {
  const addon = loadNative();
  assert.ok(addon, `native addon: ${nativeLoadError()}`);
  const device = new MemoryDevice(1 << 20);
  const server = new NbdServer({ exports: [{ name: 'disk', device }] });
  const [ours, theirs] = addon.socketPair();
  const served = new Socket({ fd: ours, readable: true, writable: true, allowHalfOpen: true });
  const kernel = new Socket({ fd: theirs, readable: true, writable: true });
  server.adopt(served, 'disk');
  const facts = server.exportFacts('disk');
  assert.equal(facts.size, 1 << 20);
  assert.ok(facts.transmissionFlags & TF.HAS_FLAGS);
  const data = randomBytes(8192);
  kernel.write(Buffer.concat([encodeRequestHeader({ flags: 0, type: Cmd.WRITE, cookie: 1n, offset: 4096n, length: data.length }), data]));
  kernel.write(encodeRequestHeader({ flags: 0, type: Cmd.READ, cookie: 2n, offset: 4096n, length: data.length }));
  kernel.write(encodeRequestHeader({ flags: 0, type: Cmd.FLUSH, cookie: 3n, offset: 0n, length: 0 }));
  const w = decodeSimpleReply(await readExactly(kernel, SIMPLE_REPLY_SIZE));
  assert.deepEqual([w.cookie, w.error], [1n, 0]);
  const r = decodeSimpleReply(await readExactly(kernel, SIMPLE_REPLY_SIZE));
  assert.deepEqual([r.cookie, r.error], [2n, 0]);
  assert.deepEqual(await readExactly(kernel, data.length), data);
  const f = decodeSimpleReply(await readExactly(kernel, SIMPLE_REPLY_SIZE));
  assert.deepEqual([f.cookie, f.error], [3n, 0]);
  kernel.write(encodeRequestHeader({ flags: 0, type: Cmd.DISC, cookie: 4n, offset: 0n, length: 0 }));
  await once(served, 'close');
  assert.equal(server.connectionCount, 0);
  kernel.destroy();
  await server.close();
  assert.throws(() => server.exportFacts('nope'), /no export named 'nope'/);
});
