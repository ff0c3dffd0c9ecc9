/**
 * The private peers `nbdcrypt bench e2e` starts on loopback: Debian's nbd-server (a daemon
 * with a private config, tracked by its PID file), OpenSSH's sshd (generated host and user
 * keys, private config, foreground) and an OpenSSH `ssh -N -L` tunnel to the nbd-server
 * (the hand-built setup nbdcrypt replaces). Minimal on purpose; the test suite has fuller
 * helpers in peers/. Peer behaviour: docs/formats.md (NBD peers, SSH).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { canConnect, findTool, freePort, runTool, startHelper, waitUntil, type Helper } from './e2e-procs.js';

/** PIDs of `pid` and all its descendants (from /proc), parents first. */
function processTree(pid: number): number[] {
  const parent = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(ppid, [...(parent.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone while we looked
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(parent.get(out[i]!) ?? []));
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

async function killTree(pid: number): Promise<void> {
  const pids = processTree(pid);
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await waitUntil('helper processes to exit', () => pids.every((p) => !alive(p)), 10_000);
}

export interface NbdServerPeer {
  port: number;
  exportName: string;
  file: string;
  uri: string;
  stop(): Promise<void>;
}

/** nbd-server on 127.0.0.1:free port exporting `file` (which must exist) as `exportName`. */
export async function startNbdServer(dir: string, file: string, exportName = 'disk'): Promise<NbdServerPeer> {
  const bin = findTool('nbd-server', 'nbd-server');
  const port = await freePort();
  const config = join(dir, 'nbd-server.conf');
  const pidFile = join(dir, 'nbd-server.pid');
  writeFileSync(
    config,
    ['[generic]', 'listenaddr = 127.0.0.1', `port = ${port}`, 'allowlist = true', `[${exportName}]`, `exportname = ${file}`, 'flush = true', 'fua = true', ''].join('\n'),
  );
  runTool(bin, ['-C', config, '-p', pidFile], 15_000);
  await waitUntil('nbd-server pid file', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '');
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  await waitUntil(`nbd-server on 127.0.0.1:${port}`, () => canConnect(port));
  return { port, exportName, file, uri: `nbd://127.0.0.1:${port}/${exportName}`, stop: () => killTree(pid) };
}

export interface SshdPeer {
  port: number;
  user: string;
  userKey: string;
  knownHosts: string;
  /** An empty ssh config file, so the user's ~/.ssh/config cannot change the measurement. */
  sshConfig: string;
  stop(): Promise<void>;
}

function keygen(path: string): string {
  runTool(findTool('ssh-keygen', 'openssh-client'), ['-q', '-t', 'ed25519', '-N', '', '-C', 'nbdcrypt-bench', '-f', path]);
  return readFileSync(`${path}.pub`, 'utf8').trim();
}

/**
 * An sshd_config for a private sshd on 127.0.0.1:`port`: host key `hostKey`, keys from
 * `dir`/authorized_keys, key login only, forwarding and the sftp subsystem as on a stock
 * server. sshd keeps the first value it reads for most keywords, so `extra` lines (first)
 * override these. Shared with the tests' sshd (peers/sshd.ts).
 */
export function sshdConfig(o: { port: number; hostKey: string; dir: string; extra?: string[] }): string {
  return [
    ...(o.extra ?? []),
    `Port ${o.port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${o.hostKey}`,
    `AuthorizedKeysFile ${join(o.dir, 'authorized_keys')}`,
    `PidFile ${join(o.dir, 'sshd.pid')}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin yes',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'AllowTcpForwarding yes',
    'AllowStreamLocalForwarding yes',
    // nbdcrypt opens it once per session (transport/sshd-nodelay.ts).
    'Subsystem sftp internal-sftp',
    'MaxSessions 64',
    'MaxStartups 100',
    'LogLevel ERROR',
    '',
  ].join('\n');
}

/** sshd on 127.0.0.1:free port accepting the current user with a generated key. */
export async function startSshd(dir: string): Promise<SshdPeer> {
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
  const helper = startHelper(bin, ['-D', '-e', '-f', config]);
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
 * connection); `sshPort` reaches sshd another way (e.g. a delay proxy in front of it).
 */
export async function startTunnel(sshd: SshdPeer, remotePort: number, cipher = 'aes128-gcm@openssh.com', sshPort = sshd.port): Promise<Tunnel> {
  const bin = findTool('ssh', 'openssh-client');
  const port = await freePort();
  const helper: Helper = startHelper(bin, [
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
  ]);
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
