/**
 * Fault injection on the ssh:// path: during a 256 MiB write-and-flush stream, at 50+
 * random points, either kill the sshd processes serving the session or SIGKILL nbd-server,
 * wipe every range not yet covered by a completed flush from the remote file (a remote
 * that loses its write cache) and restart it. No request may fail; at the end the remote
 * file's checksum must match. Exercises reconnect, replay and re-send (docs/ARCHITECTURE.md,
 * Durability and replay).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { openSync, closeSync, writeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ResilientDevice } from '../../src/resilient/resilient-device.js';
import { openTarget } from '../../src/backend/open-target.js';
import { startNbdServer, type NbdServerPeer } from '../../peers/nbd-server.js';
import { startSshd, type SshdPeer } from '../../peers/sshd.js';
import { waitFor } from '../../peers/tools.js';

const MiB = 1024 * 1024;
const TOTAL = 256 * MiB;
const WRITE = 256 * 1024;
const SEGMENT = 16 * MiB; // a flush after every segment
const WINDOW = 16; // writes in flight
const FAULTS = 56;

describe('reconnect and replay under fault injection', { timeout: 240_000 }, () => {
  let sshd: SshdPeer;
  let nbd: NbdServerPeer;
  before(async () => {
    delete process.env.SSH_AUTH_SOCK;
    sshd = await startSshd();
    nbd = await startNbdServer({ size: TOTAL });
  });
  after(async () => {
    await sshd?.stop();
    await nbd?.stop();
  });

  it(`survives ${FAULTS} kills of sshd and nbd-server during a 256 MiB write+flush stream`, async () => {
    const knownHosts = join(sshd.dir, 'known_hosts');
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
    const dev = (await openTarget(`ssh://${sshd.user}@${sshd.host}:${sshd.port}/${nbd.exportName}?nbd=127.0.0.1:${nbd.port}`, {
      knownHostsPath: knownHosts,
      identity: [sshd.userKey],
      sshConfigPath: '/dev/null',
      connections: 4,
      // Log flushes start at a quarter of the limit: keep them out of a segment, or the
      // simulated loss of the whole current segment below would wipe data they made durable.
      replayLimit: 8 * SEGMENT,
    })) as ResilientDevice;
    const expected = randomBytes(TOTAL);
    const nWrites = TOTAL / WRITE;
    const points = new Set<number>();
    while (points.size < FAULTS) points.add(1 + Math.floor(Math.random() * (nWrites - 2)));
    let acked = 0;
    let ackedAtLastFault = -1;
    let faults = 0;
    let sshKills = 0;
    let segStart = 0;

    const inject = async (): Promise<void> => {
      // Each fault must hit a link that carried traffic since the previous one.
      await waitFor('progress since the previous fault', () => acked > ackedAtLastFault, 60_000, 5);
      ackedAtLastFault = acked;
      faults++;
      if (faults % 2 === 1) {
        if ((await sshd.killConnections()) > 0) sshKills++;
        return;
      }
      await nbd.kill();
      // The remote "crashes": everything not covered by a completed flush may be lost.
      const fd = openSync(nbd.file, 'r+');
      writeSync(fd, Buffer.alloc(SEGMENT, 0xee), 0, SEGMENT, segStart);
      closeSync(fd);
      await nbd.start();
    };

    const t0 = Date.now();
    for (segStart = 0; segStart < TOTAL; segStart += SEGMENT) {
      const inflight = new Set<Promise<void>>();
      for (let off = segStart; off < segStart + SEGMENT; off += WRITE) {
        if (points.has(off / WRITE)) await inject();
        const p: Promise<void> = dev.write(off, expected.subarray(off, off + WRITE)).then(() => {
          acked++;
          inflight.delete(p);
        });
        inflight.add(p);
        if (inflight.size >= WINDOW) await Promise.race(inflight);
      }
      await Promise.all(inflight);
      await dev.flush();
    }
    const seconds = (Date.now() - t0) / 1000;
    await dev.close();
    assert.equal(faults, FAULTS);
    assert.ok(sshKills > 0, 'at least one sshd kill hit a live session');
    const remote = createHash('sha256').update(readFileSync(nbd.file)).digest('hex');
    const want = createHash('sha256').update(expected).digest('hex');
    assert.equal(remote, want, 'the remote file matches everything written');
    console.log(`# ${FAULTS} faults (${sshKills} sshd kills, ${FAULTS / 2} nbd-server crashes) in ${seconds.toFixed(1)} s`);
  });
});
