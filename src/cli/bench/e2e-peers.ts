/**
 * The private peers `nbdcrypt bench e2e` starts on loopback: Debian's nbd-server (a daemon
 * with a private config, tracked by its PID file), OpenSSH's sshd (generated host and user
 * keys, private config, foreground) and an OpenSSH `ssh -N -L` tunnel to the nbd-server
 * (the hand-built setup nbdcrypt replaces). Minimal on purpose; the tests' fuller peers
 * (peers/, not shipped) share sshd-config.ts and process-tree.ts with it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { canConnect, findTool, freePort, runTool, startHelper, waitUntil, type Helper } from './e2e-procs.js';
import { pinnedCommand } from './cpu-pinning.js';
import { killAll, processTree } from './process-tree.js';
import { sshdConfig } from './sshd-config.js';

async function killTree(pid: number): Promise<void> {
  await killAll(processTree(pid), 'helper processes to exit');
}

export interface NbdServerPeer {
  port: number;
  exportName: string;
  file: string;
  uri: string;
  /** The listening nbd-server; its per-connection forks are its children. */
  pid: number;
  stop(): Promise<void>;
}

/**
 * nbd-server on 127.0.0.1:free port exporting `file` (which must exist) as `exportName`, on
 * `cpus` (a taskset list; its per-connection forks inherit it) if given.
 */
export async function startNbdServer(dir: string, file: string, exportName = 'disk', cpus?: string): Promise<NbdServerPeer> {
  const bin = findTool('nbd-server', 'nbd-server');
  const port = await freePort();
  const config = join(dir, 'nbd-server.conf');
  const pidFile = join(dir, 'nbd-server.pid');
  writeFileSync(
    config,
    ['[generic]', 'listenaddr = 127.0.0.1', `port = ${port}`, 'allowlist = true', `[${exportName}]`, `exportname = ${file}`, 'flush = true', 'fua = true', ''].join('\n'),
  );
  runTool(...pinnedCommand(cpus, bin, ['-C', config, '-p', pidFile]), 15_000);
  await waitUntil('nbd-server pid file', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '');
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  await waitUntil(`nbd-server on 127.0.0.1:${port}`, () => canConnect(port));
  return { port, exportName, file, uri: `nbd://127.0.0.1:${port}/${exportName}`, pid, stop: () => killTree(pid) };
}

export interface SshdPeer {
  port: number;
  user: string;
  userKey: string;
  knownHosts: string;
  /** An empty ssh config file, so the user's ~/.ssh/config cannot change the measurement. */
  sshConfig: string;
  /** The listening sshd; its sessions are its children. */
  pid: number;
  stop(): Promise<void>;
}

function keygen(path: string): string {
  runTool(findTool('ssh-keygen', 'openssh-client'), ['-q', '-t', 'ed25519', '-N', '', '-C', 'nbdcrypt-bench', '-f', path]);
  return readFileSync(`${path}.pub`, 'utf8').trim();
}

/**
 * sshd on 127.0.0.1:free port accepting the current user with a generated key, on `cpus` if
 * given (its sessions and the commands they run inherit it).
 */
export async function startSshd(dir: string, cpus?: string): Promise<SshdPeer> {
  const bin = findTool('sshd', 'openssh-server');
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const hostKey = join(dir, 'ssh_host_ed25519');
  const hostPub = keygen(hostKey).split(' ').slice(0, 2).join(' ');
  const userKey = join(dir, 'id_ed25519');
  writeFileSync(join(dir, 'authorized_keys'), `${keygen(userKey)}\n`, { mode: 0o600 });
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPub}\n`);
  const sshConfig = join(dir, 'ssh_config');
  writeFileSync(sshConfig, '');
  const config = join(dir, 'sshd_config');
  writeFileSync(config, sshdConfig({ port, hostKey, dir }));
  const helper = startHelper(...pinnedCommand(cpus, bin, ['-D', '-e', '-f', config]));
  try {
    await waitUntil(`sshd on 127.0.0.1:${port}`, () => {
      if (helper.exited()) throw new Error(`sshd exited: ${helper.stderr().trim()}`);
      return canConnect(port);
    });
  } catch (e) {
    await helper.stop();
    throw e;
  }
  return {
    port,
    user: userInfo().username,
    userKey,
    knownHosts,
    sshConfig,
    pid: helper.pid,
    // The listener's per-connection children outlive a plain SIGTERM of the listener.
    stop: async () => killTree(helper.pid),
  };
}

export interface Tunnel {
  port: number;
  stop(): Promise<void>;
}

/**
 * `ssh -N -L 127.0.0.1:P:127.0.0.1:remotePort` through `sshd` with `cipher` (one SSH
 * connection); `sshPort` reaches sshd another way (e.g. a delay proxy in front of it); `cpus`
 * pins the ssh client.
 */
export async function startTunnel(sshd: SshdPeer, remotePort: number, cipher = 'aes128-gcm@openssh.com', sshPort = sshd.port, cpus?: string): Promise<Tunnel> {
  const bin = findTool('ssh', 'openssh-client');
  const port = await freePort();
  const helper: Helper = startHelper(...pinnedCommand(cpus, bin, [
    '-N',
    '-F', sshd.sshConfig,
    '-i', sshd.userKey,
    '-p', String(sshPort),
    '-o', `UserKnownHostsFile=${sshd.knownHosts}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'ExitOnForwardFailure=yes',
    '-o', `Ciphers=${cipher}`,
    '-L', `127.0.0.1:${port}:127.0.0.1:${remotePort}`,
    `${sshd.user}@127.0.0.1`,
  ]));
  try {
    await waitUntil(`ssh -L tunnel on 127.0.0.1:${port}`, () => {
      if (helper.exited()) throw new Error(`ssh -L exited: ${helper.stderr().trim()}`);
      return canConnect(port);
    });
  } catch (e) {
    await helper.stop();
    throw e;
  }
  return { port, stop: () => helper.stop() };
}
