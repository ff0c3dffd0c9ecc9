/**
 * The ssh2 transport opens the sftp subsystem once per SSH session, so that sshd runs a
 * session and turns Nagle's algorithm off on the connection (src/transport/sshd-nodelay.ts);
 * with sftpRequest false (`--no-sftp-request`) it does not. Observed in sshd's own log
 * ("Starting session: subsystem 'sftp'"), against a real sshd and nbd-server on loopback, with data
 * going through the target either way.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openTarget } from '../../src/target/open-target.js';
import { startNbdServer, type NbdServerPeer } from '../peers/nbd-server.js';
import { startSshd, type SshdPeer } from '../peers/sshd.js';
import { sleep, waitFor } from '../peers/tools.js';

const MiB = 1024 * 1024;
const SUBSYSTEM_LINE = /Starting session: subsystem 'sftp'/g;

describe('sshd is asked to turn Nagle off', () => {
  let sshd: SshdPeer;
  let nbd: NbdServerPeer;
  let knownHosts: string;
  before(async () => {
    delete process.env.SSH_AUTH_SOCK;
    sshd = await startSshd({ extraConfig: ['LogLevel VERBOSE'] });
    nbd = await startNbdServer({ size: 8 * MiB });
    knownHosts = join(sshd.dir, 'known_hosts');
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
  });
  after(async () => {
    await sshd?.stop();
    await nbd?.stop();
  });

  const requests = (): number => sshd.log().match(SUBSYSTEM_LINE)?.length ?? 0;

  async function roundTrip(sftpRequest: boolean | undefined): Promise<void> {
    const dev = await openTarget(`ssh://${sshd.user}@${sshd.host}:${sshd.port}/${nbd.exportName}?nbd=127.0.0.1:${nbd.port}`, {
      knownHostsPath: knownHosts,
      identity: [sshd.userKey],
      sshConfigPath: '/dev/null',
      sftpRequest,
    });
    try {
      const data = randomBytes(MiB);
      await dev.write(0, data);
      assert.ok((await dev.read(0, MiB)).equals(data));
    } finally {
      await dev.close();
    }
  }

  it('once per session by default', async () => {
    const before = requests();
    await roundTrip(undefined);
    await waitFor('sshd to log the sftp subsystem request', () => requests() > before, 5000);
    await sleep(300);
    assert.equal(requests() - before, 1, 'one request for one SSH session of 4 channels');
  });

  it('never with sftpRequest false', async () => {
    const before = requests();
    await roundTrip(false);
    await sleep(500);
    assert.equal(requests() - before, 0);
  });
});
