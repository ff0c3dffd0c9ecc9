/**
 * Remote targets over a real sshd and nbd-server on loopback: data round-trips over the
 * ssh2 transport (4 channels of one session, tcp and unix-socket nbd-server) and over
 * OpenSSH `ssh -W` (ssh+cmd://), and the remote file holds exactly what was written. The ssh2
 * transport asks sshd to turn Nagle off (an sftp session, seen in sshd's own log) unless told
 * not to.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BlockDevice } from '../../src/block/block-device.js';
import { ResilientDevice } from '../../src/resilient/resilient-device.js';
import { openTarget, type TargetOptions } from '../../src/backend/open-target.js';
import { SSH2_CONNECTIONS } from '../../src/backend/remote-target.js';
import { unpooled } from '../../src/block/buffer-pool.js';
import { childrenOf, startNbdServer, type NbdServerPeer } from '../../peers/nbd-server.js';
import { startSshd, type SshdPeer } from '../../peers/sshd.js';
import { sleep, waitFor } from '../../peers/tools.js';

const MiB = 1024 * 1024;

async function roundTrip(dev: BlockDevice, file: string): Promise<void> {
  const data = randomBytes(24 * MiB);
  const writes: Promise<void>[] = [];
  for (let at = 0; at < data.length; at += MiB) writes.push(dev.write(at, data.subarray(at, at + MiB)));
  await Promise.all(writes);
  await dev.flush();
  const back = await Promise.all(Array.from({ length: 24 }, (_, i) => dev.read(i * MiB, MiB)));
  assert.ok(Buffer.concat(back).equals(data), 'reads return what was written');
  await dev.close();
  assert.ok(readFileSync(file).subarray(0, data.length).equals(data), 'the remote file holds exactly what was written');
}

describe('remote targets over ssh', () => {
  let sshd: SshdPeer;
  let nbd: NbdServerPeer;
  let unixNbd: NbdServerPeer;
  let knownHosts: string;
  let sshConfig: string;
  before(async () => {
    delete process.env.SSH_AUTH_SOCK;
    // VERBOSE: sshd logs each session it starts (the sftp request below).
    sshd = await startSshd({ extraConfig: ['LogLevel VERBOSE'] });
    nbd = await startNbdServer({ size: 32 * MiB });
    unixNbd = await startNbdServer({ size: 32 * MiB, unixSocket: true });
    knownHosts = join(sshd.dir, 'known_hosts');
    writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
    sshConfig = join(sshd.dir, 'ssh_config');
    writeFileSync(sshConfig, `Host remote-alias\n  HostName ${sshd.host}\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ${sshd.userKey}\n`);
  });
  after(async () => {
    await sshd?.stop();
    await nbd?.stop();
    await unixNbd?.stop();
  });

  /** ssh:// to the tcp nbd-server with the suite's key and known_hosts, no ~/.ssh/config. */
  const sshTarget = (sftpRequest?: boolean, connections?: number) =>
    openTarget(`ssh://${sshd.user}@${sshd.host}:${sshd.port}/${nbd.exportName}?nbd=127.0.0.1:${nbd.port}`, {
      knownHostsPath: knownHosts,
      identity: [sshd.userKey],
      sshConfigPath: '/dev/null',
      sftpRequest,
      connections,
    });
  /** ssh+cmd:// (OpenSSH ssh -W) to the tcp nbd-server with the suite's key and known_hosts, no ~/.ssh/config. */
  const cmdTarget = (extra: Omit<TargetOptions, 'knownHostsPath' | 'identity' | 'sshConfigPath'> = {}) =>
    openTarget(`ssh+cmd://${sshd.user}@${sshd.host}:${sshd.port}/${nbd.exportName}?nbd=127.0.0.1:${nbd.port}`, {
      knownHostsPath: knownHosts,
      identity: [sshd.userKey],
      sshConfigPath: '/dev/null',
      ...extra,
    });
  /** Request io that adds up the transient bytes reported to it. */
  const countingIo = () => {
    const io = { buffers: unpooled, reported: 0, noteTransientBytes: (n: number) => void (io.reported += n) };
    return io;
  };
  // The ssh2 transport opens the sftp subsystem once per SSH session, so that sshd runs a
  // session and turns Nagle's algorithm off on the connection (src/transport/sshd-nodelay.ts).
  const sftpSessions = (): number => sshd.log().match(/Starting session: subsystem 'sftp'/g)?.length ?? 0;

  it('ssh:// opens SSH2_CONNECTIONS (2) channels by default', async () => {
    const dev = await sshTarget();
    assert.ok(dev instanceof ResilientDevice);
    assert.equal(SSH2_CONNECTIONS, 2);
    assert.equal(dev.connectionCount, 2);
    await dev.close();
  });

  it('ssh:// with 4 channels of one session to a tcp nbd-server', async () => {
    const dev = await sshTarget(undefined, 4);
    assert.ok(dev instanceof ResilientDevice);
    assert.equal(dev.connectionCount, 4);
    assert.equal(childrenOf(sshd.pid()).length, 1, 'the 4 channels share one SSH session (one sshd connection process)');
    assert.equal(dev.size, 32 * MiB);
    await roundTrip(dev, nbd.file);
  });

  it('ssh:// through a ~/.ssh/config alias to a unix-socket nbd-server', async () => {
    const dev = await openTarget(`ssh://remote-alias/${unixNbd.exportName}?socket=${unixNbd.socketPath}`, { knownHostsPath: knownHosts, sshConfigPath: sshConfig });
    await roundTrip(dev, unixNbd.file);
  });

  it('ssh2 reports its socket reads and fresh packets as short-lived Buffer bytes, each byte once', async () => {
    const io = countingIo();
    const dev = await openTarget(`ssh://remote-alias/${unixNbd.exportName}?socket=${unixNbd.socketPath}`, { knownHostsPath: knownHosts, sshConfigPath: sshConfig, io });
    await roundTrip(dev, unixNbd.file);
    // 24 MiB each way: the socket reads (ssh2-internals.ts) carry the 24 MiB read; the channel
    // data the NBD client parses are slices of those reads and are not reported again; the
    // packets written come from reused slabs (ssh-packet-pool.ts), and only fresh ones count.
    assert.ok(io.reported >= 24 * MiB, `${(io.reported / MiB).toFixed(1)} MiB reported for 24 MiB written and 24 MiB read`);
    assert.ok(io.reported < 1.5 * 24 * MiB, `${(io.reported / MiB).toFixed(1)} MiB reported: channel data counted again, or written packets counted as fresh memory though their slabs are reused`);
  });

  it('ssh+cmd:// reports the socket reads of its NBD client, whose Buffers no transport reported', async () => {
    const io = countingIo();
    const dev = await cmdTarget({ io });
    await roundTrip(dev, nbd.file);
    assert.ok(io.reported >= 24 * MiB, `${(io.reported / MiB).toFixed(1)} MiB reported for 24 MiB read`);
  });

  it('sshd is asked to turn Nagle off: one sftp session per SSH session by default', async () => {
    const before = sftpSessions();
    await roundTrip(await sshTarget(undefined, 4), nbd.file);
    await waitFor('sshd to log the sftp subsystem request', () => sftpSessions() > before, 5000);
    await sleep(300);
    assert.equal(sftpSessions() - before, 1, 'one request for one SSH session of 4 channels');
  });

  it('sshd is not asked with sftpRequest false (--no-sftp-request)', async () => {
    const before = sftpSessions();
    await roundTrip(await sshTarget(false), nbd.file);
    await sleep(500);
    assert.equal(sftpSessions() - before, 0);
  });

  it('ssh+cmd:// through OpenSSH ssh -W', async () => {
    const dev = await cmdTarget({ connections: 2 });
    await roundTrip(dev, nbd.file);
  });

  it('ssh+cmd:// gives ssh -W a loopback TCP connection as standard input and output, not a socketpair', async () => {
    const dev = await cmdTarget();
    let checked = false;
    try {
      const ssh = childrenOf(process.pid).filter((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'ssh');
      assert.equal(ssh.length, 1, 'one ssh -W for one connection');
      const tcpInodes = new Set(['/proc/net/tcp', '/proc/net/tcp6'].flatMap((f) => readFileSync(f, 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/)[9])));
      // ssh moves its standard input and output to other descriptors (its standard error stays
      // a socketpair): two TCP sockets, the connection to sshd and the one to nbdcrypt.
      const sockets = new Set(readdirSync(`/proc/${ssh[0]}/fd`).flatMap((fd) => /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${ssh[0]}/fd/${fd}`))?.[1] ?? []));
      assert.equal([...sockets].filter((inode) => tcpInodes.has(inode)).length, 2);
      checked = true;
    } finally {
      if (!checked) await dev.close();
    }
    await roundTrip(dev, nbd.file);
  });

  it('keepalives notice a silent partition (sshd stopped) and the client reconnects', async () => {
    const dev = (await openTarget(`ssh://${sshd.user}@${sshd.host}:${sshd.port}/${nbd.exportName}?nbd=127.0.0.1:${nbd.port}`, {
      knownHostsPath: knownHosts,
      identity: [sshd.userKey],
      sshConfigPath: '/dev/null',
      connections: 2,
      keepaliveInterval: 300,
    })) as ResilientDevice;
    const stopped = sshd.signalConnections('SIGSTOP');
    assert.ok(stopped.length > 0);
    try {
      const data = randomBytes(MiB);
      const t0 = Date.now();
      await dev.write(0, data);
      await dev.flush();
      const took = Date.now() - t0;
      assert.ok(dev.reconnects >= 1, 'recovered through a new session');
      assert.ok(took < 10_000, `recovered in ${took} ms`);
      assert.ok((await dev.read(0, MiB)).equals(data));
    } finally {
      for (const p of stopped) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await dev.close();
    }
  });

  it('ssh+cmd:// reconnects when the sshd serving it is killed', async () => {
    const dev = (await cmdTarget({ connections: 2 })) as ResilientDevice;
    const data = randomBytes(4 * MiB);
    const w = dev.write(0, data);
    assert.ok((await sshd.killConnections()) > 0);
    await w;
    await dev.flush();
    assert.ok((await dev.read(0, data.length)).equals(data));
    assert.ok(dev.reconnects >= 1, 'the drop was noticed and recovered from');
    await dev.close();
    assert.ok(readFileSync(nbd.file).subarray(0, data.length).equals(data));
  });
});
