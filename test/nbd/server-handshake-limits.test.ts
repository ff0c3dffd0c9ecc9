/**
 * Half-open and hostile handshakes cannot hold the server's resources for ever: a client that
 * never finishes the option phase is dropped after the handshake timeout (whether it is silent
 * or keeps sending options), a client that finished it is not, and a client that floods
 * options without reading the replies stops being read instead of growing the server's memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as codec from '../../src/nbd/codec.js';
import { CLIENT_FIXED_NEWSTYLE, CLIENT_NO_ZEROES, Cmd, Info, Opt, Rep } from '../../src/nbd/protocol.js';
import { NbdServer } from '../../src/nbd/server.js';
import { defaultLimits } from '../../src/nbd/served-export.js';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { scratchDir } from '../../peers/tools.js';
import { RawConn } from './raw-nbd.js';

const opt = (o: number, data: Buffer = Buffer.alloc(0)) => Buffer.concat([codec.encodeOptionHeader(o, data.length), data]);

async function withServer(opts: { handshakeTimeoutMs?: number }, body: (address: string, server: NbdServer) => Promise<void>): Promise<void> {
  const dir = scratchDir('nbdcrypt-hs-');
  const server = new NbdServer({
    exports: [{ name: 'disk', description: 'd'.repeat(1000), device: new MemoryDevice(1 << 20) }],
    limits: opts.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: opts.handshakeTimeoutMs },
  });
  try {
    await body(await server.listen(`unix:${join(dir.path, 's.sock')}`), server);
  } finally {
    await server.close(2000);
    dir.remove();
  }
}

test('the handshake timeout drops silent and dawdling clients, not connections in transmission', { timeout: 30_000 }, async () => {
  await withServer({ handshakeTimeoutMs: 300 }, async (address) => {
    const silent = await RawConn.open(address);
    await silent.read(18);
    const dawdler = await RawConn.open(address);
    await dawdler.read(18);
    dawdler.send(Buffer.from([0, 0, 0, CLIENT_FIXED_NEWSTYLE]));
    const tick = setInterval(() => dawdler.send(opt(Opt.LIST)), 50);
    const served = await RawConn.open(address);
    await served.go();
    try {
      assert.ok(await silent.waitClosed(5000), 'a client that sent nothing after the greeting is still connected');
      assert.ok(await dawdler.waitClosed(5000), 'a client that keeps sending options but never GO is still connected');
    } finally {
      clearInterval(tick);
    }
    // Well past the timeout, the connection that finished its handshake still serves.
    await new Promise((r) => setTimeout(r, 400));
    served.request(Cmd.READ, 1n, 0, 4096);
    const r = await served.readSimpleReply();
    assert.equal(r.error, 0);
    await served.read(4096);
    served.destroy();
  });
});

test('the default handshake timeout is 30 s', () => {
  assert.equal(defaultLimits.handshakeTimeoutMs, 30_000);
});

test('a client flooding options without reading the replies stops being read', { timeout: 30_000 }, async () => {
  await withServer({}, async (address, server) => {
    const c = await RawConn.open(address);
    await c.read(18);
    c.socket.pause(); // reads nothing more from here on
    c.send(Buffer.from([0, 0, 0, CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES]));
    // Each INFO asking for NAME and DESCRIPTION brings over 1 KiB of replies back: 4 MiB of
    // them would make the server queue about 150 MiB if it kept reading.
    const one = opt(Opt.INFO, codec.encodeInfoRequest('disk', [Info.NAME, Info.DESCRIPTION]));
    const many = Buffer.concat(Array.from({ length: Math.ceil((4 << 20) / one.length) }, () => one));
    c.send(many);
    let most = 0;
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      most = Math.max(most, server.bufferedBytes);
    }
    assert.ok(most < 1 << 20, `the server buffered up to ${most} bytes for a client that reads none of its replies`);
    // Once the client reads, negotiation goes on where it stopped.
    c.socket.resume();
    const first = await c.readOptionReply();
    assert.equal(first.type, Rep.INFO);
    c.destroy();
  });
});
