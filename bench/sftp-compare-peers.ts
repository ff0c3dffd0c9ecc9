/**
 * Peers of bench/sftp-compare that reach an image file over SFTP without nbdcrypt: an
 * ssh-agent holding the bench key (qemu's ssh driver authenticates through an agent only),
 * qemu-nbd with its luks driver over its ssh driver, nbdkit's ssh plugin, and sshfs with the
 * image file attached to a loop device. Each one runs on `cpus` (the local side) and is
 * stopped by its PID. What each peer is: docs/performance.md (SFTP).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { pinnedCommand } from '../src/cli/bench/cpu-pinning.js';
import type { SshdPeer } from '../src/cli/bench/e2e-peers.js';
import { findTool, runTool, runToolAsync, startHelper, waitUntil, type Helper } from '../src/cli/bench/e2e-procs.js';
import type { Served } from './e2e-compare-peers.js';

async function untilReady(helper: Helper, what: string, ready: () => boolean | Promise<boolean>): Promise<void> {
  try {
    await waitUntil(what, () => {
      if (helper.exited()) throw new Error(`${what} exited: ${helper.stderr().trim()}`);
      return ready();
    }, 30_000);
  } catch (e) {
    await helper.stop();
    throw e;
  }
}

export interface Agent {
  socket: string;
  stop(): Promise<void>;
}

/** ssh-agent in the foreground on a socket in `dir`, holding `key`. */
export async function startAgent(dir: string, key: string): Promise<Agent> {
  const socket = join(dir, 'agent.sock');
  const helper = startHelper(findTool('ssh-agent', 'openssh-client'), ['-D', '-a', socket]);
  await untilReady(helper, 'ssh-agent', () => existsSync(socket));
  try {
    runTool('env', [`SSH_AUTH_SOCK=${socket}`, findTool('ssh-add', 'openssh-client'), '-q', key]);
  } catch (e) {
    await helper.stop();
    throw e;
  }
  return { socket, stop: () => helper.stop() };
}

/**
 * qemu-nbd serving the LUKS1 image `path` on the server through qemu's ssh block driver
 * (SFTP, one request at a time) and its luks driver. The host key is not checked: the
 * server is the bench's own sshd on loopback.
 */
export async function startQemuNbdSsh(dir: string, sshd: SshdPeer, path: string, keyFile: string, agent: Agent, cpus?: string): Promise<Served> {
  const sock = join(dir, 'qemu-ssh.sock');
  const file = `file.driver=ssh,file.server.host=127.0.0.1,file.server.port=${sshd.port},file.user=${sshd.user},file.path=${path},file.host-key-check.mode=none`;
  const helper = startHelper(
    ...pinnedCommand(cpus, findTool('qemu-nbd', 'qemu-utils'), [
      '--object', `secret,id=sec0,file=${keyFile}`,
      '--image-opts', `driver=luks,key-secret=sec0,${file}`,
      '-k', sock, '-x', 'disk', '-t', '--shared=16', '--cache=writeback',
    ]),
    { ...process.env, SSH_AUTH_SOCK: agent.socket },
  );
  await untilReady(helper, 'qemu-nbd (luks over ssh)', () => existsSync(sock));
  return { uri: `nbd+unix:///disk?socket=${sock}`, stop: () => helper.stop() };
}

/** nbdkit's ssh plugin (plaintext) serving `path` on the server, foreground, on a unix socket. */
export async function startNbdkitSsh(dir: string, sshd: SshdPeer, path: string, sshPort = sshd.port, cpus?: string): Promise<Served> {
  const sock = join(dir, `nbdkit-ssh-${sshPort}.sock`);
  const helper = startHelper(
    ...pinnedCommand(cpus, findTool('nbdkit', 'nbdkit'), [
      '-f', '-U', sock, '-e', 'disk', 'ssh',
      'host=127.0.0.1', `port=${sshPort}`, `user=${sshd.user}`, `path=${path}`,
      `identity=${sshd.userKey}`, `known-hosts=${sshd.knownHosts}`,
    ]),
  );
  await untilReady(helper, 'nbdkit ssh', () => existsSync(sock));
  return { uri: `nbd+unix:///disk?socket=${sock}`, stop: () => helper.stop() };
}

export interface SshfsLoop {
  /** The loop device (fio runs on it directly). */
  device: string;
  stop(): Promise<void>;
}

/**
 * sshfs mounts the server directory holding `file` (through `sshPort`), and `file` inside the
 * mount is attached to a loop device: the hand-built way to a block device on SFTP storage.
 * direct_io keeps the page cache out, so every read and write crosses the link. Nothing here
 * touches the mount synchronously: the WAN proxy in front of sshd runs in this process's event
 * loop, and a blocked loop would starve the very mount it waits for.
 */
export async function startSshfsLoop(dir: string, sshd: SshdPeer, remoteDir: string, file: string, sshPort = sshd.port, cpus?: string): Promise<SshfsLoop> {
  const mnt = join(dir, `sshfs-${sshPort}`);
  mkdirSync(mnt, { recursive: true });
  const helper = startHelper(
    ...pinnedCommand(cpus, findTool('sshfs', 'sshfs'), [
      '-f', `${sshd.user}@127.0.0.1:${remoteDir}`, mnt,
      '-p', String(sshPort),
      '-F', sshd.sshConfig,
      '-o', `IdentityFile=${sshd.userKey}`,
      '-o', `UserKnownHostsFile=${sshd.knownHosts}`,
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes',
      '-o', 'direct_io',
    ]),
  );
  const inside = join(mnt, file);
  await untilReady(helper, 'sshfs mount', () => access(inside).then(() => true, () => false));
  const losetup = findTool('losetup', 'mount');
  let device: string;
  try {
    device = (await runToolAsync(...pinnedCommand(cpus, losetup, ['-f', '--show', inside]))).trim();
  } catch (e) {
    await runToolAsync(findTool('fusermount3', 'fuse3'), ['-u', mnt]).catch(() => undefined);
    await helper.stop();
    throw e;
  }
  return {
    device,
    stop: async () => {
      await runToolAsync(losetup, ['-d', device]);
      // losetup -d detaches lazily; the mount is busy until the loop device lets go of the file.
      await waitUntil(`${device} to detach`, async () => !(await runToolAsync(losetup, ['-j', inside])).trim(), 15_000).catch(() => undefined);
      await runToolAsync(findTool('fusermount3', 'fuse3'), ['-u', mnt]);
      await helper.stop();
    },
  };
}
