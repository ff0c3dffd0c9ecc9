/**
 * A remote nbdcrypt volume on loopback for the serve tests and the memory benchmark: a real
 * sshd and nbd-server, the volume formatted through the CLI over ssh://, and the argument list
 * that serves it. Every peer is stopped by PID in stop().
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNbdServer, type NbdServerPeer } from './nbd-server.js';
import { nbdcryptBin } from './nbdcrypt.js';
import { startSshd, type SshdPeer } from './sshd.js';
import { run, scratchDir } from './tools.js';

export interface RemoteVolume {
  sshd: SshdPeer;
  nbd: NbdServerPeer;
  dir: string;
  keyFile: string;
  uri: string;
  /** Environment for nbdcrypt: a scratch HOME (no user ~/.ssh/config), no ssh-agent. */
  env: NodeJS.ProcessEnv;
  /** Options every nbdcrypt command needs for this remote (known_hosts, identity). */
  sshArgs: string[];
  /** The fixed unix socket serveArgs() listens on, so a restarted serve has the same URI. */
  socket: string;
  /** `nbdcrypt serve URI --key-file K --listen unix:SOCKET ...extra`. */
  serveArgs(extra?: string[]): string[];
  stop(): Promise<void>;
}

/**
 * The client side of a test volume: a scratch directory with a random key file and the
 * server's known_hosts line, an environment with that directory as HOME (no user
 * ~/.ssh/config) and no ssh-agent, and the SSH options every nbdcrypt command needs.
 */
export function volumeClient(sshd: SshdPeer, prefix: string): { scratch: ReturnType<typeof scratchDir>; dir: string; keyFile: string; env: NodeJS.ProcessEnv; sshArgs: string[] } {
  const scratch = scratchDir(prefix);
  const dir = scratch.path;
  const keyFile = join(dir, 'volume.key');
  writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: dir };
  delete env.SSH_AUTH_SOCK;
  return { scratch, dir, keyFile, env, sshArgs: ['--known-hosts', knownHosts, '--identity', sshd.userKey] };
}

/** Starts sshd + nbd-server (export of `size` bytes) and runs `nbdcrypt format ssh://...`. */
export async function remoteVolume(size: number): Promise<RemoteVolume> {
  const sshd = await startSshd();
  const nbd = await startNbdServer({ size }).catch(async (e: unknown) => {
    await sshd.stop();
    throw e;
  });
  const { scratch, dir, keyFile, env, sshArgs } = volumeClient(sshd, 'nbdcrypt-serve-');
  const uri = `ssh://${sshd.user}@${sshd.host}:${sshd.port}/${nbd.exportName}?nbd=127.0.0.1:${nbd.port}`;
  const stop = async (): Promise<void> => {
    await sshd.stop();
    await nbd.stop();
    scratch.remove();
  };
  try {
    // Real argon2id at a small cost: the key is random, and the test needs seconds, not minutes.
    run(process.execPath, [nbdcryptBin, 'format', uri, '--key-file', keyFile, '--pbkdf-memory', '65536', '--pbkdf-force-iterations', '4', '--pbkdf-parallel', '1', ...sshArgs], { env, timeoutMs: 120_000 });
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    sshd,
    nbd,
    dir,
    keyFile,
    uri,
    env,
    sshArgs,
    socket: join(dir, 'nbd.sock'),
    serveArgs: (extra = []) => ['serve', uri, '--key-file', keyFile, '--listen', `unix:${join(dir, 'nbd.sock')}`, ...sshArgs, ...extra],
    stop,
  };
}
