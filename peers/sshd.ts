/**
 * Starts OpenSSH's sshd on loopback with a private sshd_config, a generated host key and a
 * generated user key (ssh-keygen), for integration tests of the ssh transport. It runs in
 * the foreground (-D -e) as root, tracked by PID; `killConnections()` kills the sshd
 * processes serving live connections (children of the listener) for fault injection. The
 * sshd_config and the process-tree helpers are the shipped bench's (src/cli/bench/), so the
 * tests and `nbdcrypt bench e2e` run the same server setup.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
  /** Login name accepted (the user running the tests: root on CI). */
  user: string;
  /** Private key file of the authorized user key (unencrypted). */
  userKey: string;
  /** Host public key as "type base64". */
  hostKey: string;
  /** The known_hosts line for this server, "[127.0.0.1]:PORT type base64". */
  knownHostsLine: string;
  pid(): number;
  /** What sshd wrote to standard error so far (its log, with -e). */
  log(): string;
  /** SIGKILLs every sshd process serving a connection (the listener survives); returns how many. */
  killConnections(): Promise<number>;
  /** Sends `signal` (e.g. SIGSTOP/SIGCONT: a silent partition) to the processes serving connections; returns their PIDs. */
  signalConnections(signal: NodeJS.Signals): number[];
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** Extra sshd_config lines, placed first so that they override the defaults. */
  extraConfig?: string[];
  /** taskset CPU list for sshd; its sessions and the commands they run inherit it. */
  cpus?: string;
}

const descendantsOf = (pid: number): number[] => processTree(pid).slice(1);

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
  writeFileSync(config, sshdConfig({ port, hostKey: hostKeyPath, dir: dir.path, extra: opts.extraConfig }));
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
    throw e;
  }
  const user = process.env.USER ?? run('id', ['-un']).stdout.trim();
  return {
    host,
    port,
    dir: dir.path,
    user,
    userKey,
    hostKey: hostPub,
    knownHostsLine: `[${host}]:${port} ${hostPub}`,
    pid: () => proc.pid,
    log: () => proc.stderr(),
    killConnections: async () => {
      const pids = descendantsOf(proc.pid);
      await killAll(pids, 'sshd connection processes to exit');
      return pids.length;
    },
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
    },
  };
}
