/**
 * Starts OpenSSH's sshd on loopback with a private sshd_config, a generated host key and a
 * generated user key (ssh-keygen), for integration tests of the ssh transport. It runs in
 * the foreground (-D -e) as root, tracked by PID; `killConnections()` kills the sshd
 * processes serving live connections (children of the listener) for fault injection. The
 * sshd_config and the process-tree helpers are the shipped bench's (src/cli/bench/), so the
 * tests and `nbdcrypt bench e2e` run the same server setup.
 * With `restricted` the login is set up as storage providers sell it: `ForceCommand
 * internal-sftp` in a root-owned `ChrootDirectory`, no TCP forwarding, no TTY; `sftpServer`
 * replaces the sftp subsystem (e.g. the external /usr/lib/openssh/sftp-server).
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { killAll, processTree } from '../src/cli/bench/process-tree.js';
import { pinnedCommand } from '../src/cli/bench/cpu-pinning.js';
import { sshdConfig } from '../src/cli/bench/sshd-config.js';
import { freePort, requireTool, run, scratchDir, startProcess, waitFor, type Proc } from './tools.js';

export interface SshdPeer {
  host: string;
  port: number;
  dir: string;
  /** Login name accepted (the user running the tests: root on CI; SshdOptions.user). */
  user: string;
  /** Private key file of the authorized user key (unencrypted). */
  userKey: string;
  /**
   * A writable directory for images: `local` is its path on this machine, `remote` the
   * path the SFTP account sees (inside the chroot with `restricted`).
   */
  sftpData: { local: string; remote: string };
  /** Host public key as "type base64". */
  hostKey: string;
  /** The known_hosts line for this server, "[127.0.0.1]:PORT type base64". */
  knownHostsLine: string;
  pid(): number;
  /** What sshd wrote to standard error so far (its log, with -e). */
  log(): string;
  /** SIGKILLs every sshd process serving a connection (the listener survives); returns how many. */
  killConnections(): Promise<number>;
  /** PIDs of the processes serving connections whose command name is `comm` (e.g. 'sftp-server', one per SFTP channel). */
  connectionProcesses(comm: string): number[];
  /** Sends `signal` (e.g. SIGSTOP/SIGCONT: a silent partition) to the processes serving connections; returns their PIDs. */
  signalConnections(signal: NodeJS.Signals): number[];
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** Extra sshd_config lines, placed first so that they override the defaults. */
  extraConfig?: string[];
  /** taskset CPU list for sshd; its sessions and the commands they run inherit it. */
  cpus?: string;
  /** The test user may only use SFTP, chrooted, without forwarding or TTY (see above). */
  restricted?: boolean;
  /** Command of the sftp subsystem (default internal-sftp), with options such as -P. */
  sftpServer?: string;
  /** Log in as this (unprivileged) user instead of the one running the tests, e.g. nobody. */
  user?: string;
}

/** ChrootDirectory needs every path component root-owned and not group/world-writable (/tmp is not). */
const CHROOT_PARENT = '/var/lib/nbdcrypt-test';

function chrootDir(): string {
  mkdirSync(CHROOT_PARENT, { recursive: true, mode: 0o755 });
  const root = mkdtempSync(join(CHROOT_PARENT, 'sftp-'));
  chmodSync(root, 0o755);
  mkdirSync(join(root, 'data'), { mode: 0o755 });
  return root;
}

const descendantsOf = (pid: number): number[] => processTree(pid).slice(1);

function commOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined; // gone while we looked
  }
}

export function keygen(path: string, type = 'ed25519', passphrase = ''): string {
  run(requireTool('ssh-keygen', 'openssh-client'), ['-q', '-t', type, '-N', passphrase, '-C', 'nbdcrypt-test', '-f', path]);
  return readFileSync(`${path}.pub`, 'utf8').trim();
}

export async function startSshd(opts: SshdOptions = {}): Promise<SshdPeer> {
  const sshd = requireTool('sshd', 'openssh-server');
  const dir = scratchDir('nbdcrypt-sshd-');
  // sshd refuses to start without its privilege-separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const host = '127.0.0.1';
  const port = await freePort();
  const hostKeyPath = join(dir.path, 'host_ed25519');
  const hostPub = keygen(hostKeyPath).split(' ').slice(0, 2).join(' ');
  const userKey = join(dir.path, 'user_ed25519');
  const userPub = keygen(userKey);
  writeFileSync(join(dir.path, 'authorized_keys'), `${userPub}\n`, { mode: 0o600 });
  const config = join(dir.path, 'sshd_config');
  const user = opts.user ?? process.env.USER ?? run('id', ['-un']).stdout.trim();
  if (opts.user) {
    // sshd reads authorized_keys as the user logging in.
    chmodSync(dir.path, 0o755);
    chmodSync(join(dir.path, 'authorized_keys'), 0o644);
  }
  const sftpRoot = opts.restricted ? chrootDir() : '/';
  if (!opts.restricted) mkdirSync(join(dir.path, 'data'));
  const subsystem = `Subsystem sftp ${opts.sftpServer ?? 'internal-sftp'}`;
  // sshd refuses a second Subsystem line, and Match blocks must come last.
  const base = sshdConfig({ port, hostKey: hostKeyPath, dir: dir.path, extra: opts.extraConfig }).replace('Subsystem sftp internal-sftp', subsystem);
  const match = opts.restricted ? [`Match User ${user}`, `  ChrootDirectory ${sftpRoot}`, `  ForceCommand ${opts.sftpServer ?? 'internal-sftp'}`, '  AllowTcpForwarding no', '  AllowStreamLocalForwarding no', '  PermitTTY no', '  X11Forwarding no', ''] : [];
  writeFileSync(config, base + match.join('\n'));
  const removeRoot = (): void => {
    if (opts.restricted) rmSync(sftpRoot, { recursive: true, force: true });
  };
  const proc: Proc = startProcess(...pinnedCommand(opts.cpus, sshd, ['-D', '-e', '-f', config]));
  // sshd would outlive a test process that exits without stop(): kill it on the way out.
  const onExit = (): void => {
    for (const p of [...descendantsOf(proc.pid), proc.pid]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.on('exit', onExit);
  const ready = (): Promise<boolean> =>
    new Promise((resolve) => {
      const s = connect({ host, port });
      s.once('data', (b: Buffer) => {
        s.destroy();
        resolve(b.toString().startsWith('SSH-'));
      });
      s.once('error', () => resolve(false));
    });
  try {
    await waitFor(`sshd on ${host}:${port}`, async () => {
      if (proc.child.exitCode !== null) throw new Error(`sshd exited: ${proc.stderr().trim()}`);
      return ready();
    }, 10_000);
  } catch (e) {
    process.off('exit', onExit);
    await proc.stop();
    dir.remove();
    removeRoot();
    throw e;
  }
  return {
    host,
    port,
    dir: dir.path,
    user,
    userKey,
    sftpData: opts.restricted ? { local: join(sftpRoot, 'data'), remote: '/data' } : { local: join(dir.path, 'data'), remote: join(dir.path, 'data') },
    hostKey: hostPub,
    knownHostsLine: `[${host}]:${port} ${hostPub}`,
    pid: () => proc.pid,
    log: () => proc.stderr(),
    killConnections: async () => {
      const pids = descendantsOf(proc.pid);
      await killAll(pids, 'sshd connection processes to exit');
      return pids.length;
    },
    connectionProcesses: (comm) => descendantsOf(proc.pid).filter((p) => commOf(p) === comm),
    signalConnections: (signal) => {
      const pids = descendantsOf(proc.pid);
      for (const p of pids) {
        try {
          process.kill(p, signal);
        } catch {
          // already gone
        }
      }
      return pids;
    },
    stop: async () => {
      process.off('exit', onExit);
      for (const p of descendantsOf(proc.pid)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await proc.stop();
      dir.remove();
      removeRoot();
    },
  };
}
