/**
 * Reconnect behaviour of the resilient device over the NBD client, tcp to a real nbd-server: requests in flight
 * across a server restart complete; --io-timeout fails a request that waits too long (a
 * stopped server, a server that stays down) and the client recovers afterwards; a changed
 * export size after a restart fails everything clearly; the replay log stays within
 * --replay-limit by forcing flushes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, it } from 'node:test';
import { isNbdcryptError } from '../../src/errors.js';
import { openNbdDevice, type NbdDeviceOptions } from '../../src/backend/remote-target.js';
import type { ResilientDevice } from '../../src/resilient/resilient-device.js';
import { tcpTransport } from '../../src/transport/tcp.js';
import { childrenOf, startNbdServer, type NbdServerPeer } from '../../peers/nbd-server.js';
import { run, sleep, waitFor } from '../../peers/tools.js';

const MiB = 1024 * 1024;

describe('resilient NBD client: reconnect against a real nbd-server', () => {
  let srv: NbdServerPeer | undefined;
  let client: ResilientDevice | undefined;
  afterEach(async () => {
    await client?.close().catch(() => {});
    await srv?.stop();
    client = undefined;
    srv = undefined;
  });
  const connect = async (opts: NbdDeviceOptions = {}): Promise<ResilientDevice> => {
    srv = await startNbdServer({ size: 16 * MiB });
    client = await openNbdDevice(tcpTransport({ host: srv.host, port: srv.port }), srv.exportName, opts);
    return client;
  };

  it('completes reads and writes in flight across a server restart', async () => {
    const c = await connect({ connections: 2 });
    const data = randomBytes(8 * MiB);
    const writes = Array.from({ length: 32 }, (_, i) => c.write(i * 256 * 1024, data.subarray(i * 256 * 1024, (i + 1) * 256 * 1024)));
    await srv!.restart();
    await Promise.all(writes);
    const reads = Array.from({ length: 8 }, (_, i) => c.read(i * MiB, MiB));
    await srv!.restart();
    assert.ok(Buffer.concat(await Promise.all(reads)).equals(data));
    await c.flush();
    assert.ok(readFileSync(srv!.file).subarray(0, data.length).equals(data));
  });

  it('fails a request with ETIMEDOUT after --io-timeout while the server is stopped, then recovers', async () => {
    const c = await connect({ ioTimeout: 1 });
    await c.write(0, Buffer.alloc(4096, 7));
    const served = childrenOf(srv!.pid());
    for (const p of served) process.kill(p, 'SIGSTOP');
    const t0 = Date.now();
    await assert.rejects(c.read(0, 4096), (e) => isNbdcryptError(e, 'ETIMEDOUT') && /I\/O timeout of 1 s/.test((e as Error).message));
    const waited = Date.now() - t0;
    assert.ok(waited >= 900 && waited < 5000, `failed after ${waited} ms`);
    for (const p of served) process.kill(p, 'SIGCONT');
    assert.ok((await c.read(0, 4096)).equals(Buffer.alloc(4096, 7)));
  });

  it('fails waiting requests after --io-timeout while the server is down, and carries on once it is back', async () => {
    const c = await connect({ ioTimeout: 1 });
    await srv!.kill();
    await assert.rejects(c.write(0, Buffer.alloc(4096, 1)), (e) => isNbdcryptError(e, 'ETIMEDOUT') && /link down/.test((e as Error).message));
    await srv!.start();
    // The backoff grew while the server was down; the next attempt comes within 5 s.
    await waitFor('the client to reconnect', () => c.linkState === 'up', 10_000);
    await c.write(0, Buffer.alloc(4096, 2));
    assert.ok((await c.read(0, 4096)).equals(Buffer.alloc(4096, 2)));
  });

  it('refuses to replay onto an export whose size changed', async () => {
    const c = await connect();
    await c.write(0, Buffer.alloc(4096, 3));
    await srv!.kill();
    run('truncate', ['-s', String(8 * MiB), srv!.file]);
    const pending = c.write(4096, Buffer.alloc(4096, 4));
    await srv!.start();
    await assert.rejects(pending, (e) => isNbdcryptError(e, 'EIO') && /size changed from 16777216 to 8388608/.test((e as Error).message));
    await assert.rejects(c.read(0, 4096), /size changed/);
  });

  it('keeps the replay log within --replay-limit by forcing flushes', async () => {
    const limit = MiB;
    const c = await connect({ replayLimit: limit });
    let peak = 0;
    for (let i = 0; i < 32; i++) {
      await c.write(i * 128 * 1024, randomBytes(128 * 1024));
      peak = Math.max(peak, c.replayBytes);
    }
    assert.ok(peak <= limit, `replay log peaked at ${peak} bytes`);
    assert.ok(peak > 0);
    await sleep(0);
  });
});
