/**
 * The NBD client against a real nbd-server over tcp and unix sockets: handshake, caps,
 * pipelined round-trips, requests split over 32 MiB, the remote file holding exactly what
 * was written, and clear errors for a missing export and a closed port.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { isNbdcryptError } from '../../src/errors.js';
import { openNbdDevice } from '../../src/backend/remote-target.js';
import { tcpTransport } from '../../src/transport/tcp.js';
import { unixTransport } from '../../src/transport/unix.js';
import { startNbdServer, type NbdServerPeer } from '../../peers/nbd-server.js';
import { freePort } from '../../peers/tools.js';

const MiB = 1024 * 1024;

describe('NBD client over tcp and unix', () => {
  let srv: NbdServerPeer;
  let usrv: NbdServerPeer;
  before(async () => {
    srv = await startNbdServer({ size: 80 * MiB });
    usrv = await startNbdServer({ size: 80 * MiB, unixSocket: true });
  });
  after(async () => {
    await srv?.stop();
    await usrv?.stop();
  });

  it('negotiates the export and mirrors the remote flags', async () => {
    const c = await openNbdDevice(tcpTransport({ host: srv.host, port: srv.port }), srv.exportName);
    try {
      assert.equal(c.size, 80 * MiB);
      assert.deepEqual(c.caps, { flush: true, fua: true, trim: true, zeroes: true, multiConn: true, readOnly: false });
    } finally {
      await c.close();
    }
  });

  it('round-trips pipelined writes and reads over tcp with 4 connections; the remote file matches', async () => {
    const c = await openNbdDevice(tcpTransport({ host: srv.host, port: srv.port }), srv.exportName, { connections: 4 });
    assert.equal(c.connectionCount, 4);
    const image = Buffer.alloc(8 * MiB);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      const off = Math.floor(Math.random() * (image.length - 70000));
      const data = randomBytes(1 + Math.floor(Math.random() * 65536));
      data.copy(image, off);
      // Sequential in program order for overlapping ranges: await each before the next overlap can race.
      writes.push(c.write(off, data));
      await writes[writes.length - 1];
    }
    await c.flush();
    const reads = await Promise.all(Array.from({ length: 64 }, (_, i) => c.read(i * 128 * 1024, 128 * 1024)));
    assert.ok(Buffer.concat(reads).equals(image), 'pipelined reads return what was written');
    await c.close();
    assert.ok(readFileSync(srv.file).subarray(0, image.length).equals(image), 'remote file holds exactly the writes');
  });

  it('splits requests over the 32 MiB maximum payload', async () => {
    const c = await openNbdDevice(unixTransport({ path: usrv.socketPath! }), usrv.exportName);
    const big = randomBytes(70 * MiB);
    await c.write(MiB, big, true);
    const back = await c.read(MiB, big.length);
    assert.ok(back.equals(big));
    await c.writeZeroes(MiB, 33 * MiB);
    assert.ok((await c.read(MiB, 33 * MiB)).equals(Buffer.alloc(33 * MiB)));
    await c.trim(40 * MiB, 4096);
    await c.close();
    const remote = readFileSync(usrv.file);
    assert.ok(remote.subarray(34 * MiB, 40 * MiB).equals(big.subarray(33 * MiB, 39 * MiB)));
  });

  it('refuses out-of-range requests with ERANGE', async () => {
    const c = await openNbdDevice(tcpTransport({ host: srv.host, port: srv.port }), srv.exportName);
    await assert.rejects(c.read(80 * MiB - 10, 20), (e) => isNbdcryptError(e, 'ERANGE'));
    await c.close();
  });

  it('names a missing export (ENOEXPORT)', async () => {
    await assert.rejects(openNbdDevice(tcpTransport({ host: srv.host, port: srv.port }), 'no-such-disk'), (e) => {
      assert.ok(isNbdcryptError(e, 'ENOEXPORT'), String(e));
      assert.match((e as Error).message, /no-such-disk/);
      return true;
    });
  });

  it('fails fast with ECONNECT on a closed port', async () => {
    const port = await freePort();
    const t0 = Date.now();
    await assert.rejects(openNbdDevice(tcpTransport({ host: '127.0.0.1', port, connectTimeoutMs: 3000 }), 'disk'), (e) => isNbdcryptError(e, 'ECONNECT'));
    assert.ok(Date.now() - t0 < 3500);
  });
});
