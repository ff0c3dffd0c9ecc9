/**
 * An nbdcrypt volume as a file on an SFTP storage login on loopback, for the sftp:// tests:
 * a restricted sshd (peers/sshd.ts: chroot, ForceCommand internal-sftp, no forwarding), the
 * image created and formatted through the CLI (`format sftp://... --size`), and the argument
 * lists that reach it. Every peer is stopped by PID in stop().
 */
import { join } from 'node:path';
import { nbdcryptBin } from './nbdcrypt.js';
import { volumeClient } from './remote-volume.js';
import { startSshd, type SshdOptions, type SshdPeer } from './sshd.js';
import { run } from './tools.js';

export interface SftpVolume {
  sshd: SshdPeer;
  /** Scratch directory on this machine (key file, known_hosts, socket). */
  dir: string;
  keyFile: string;
  /** sftp://USER@HOST:PORT/data/NAME */
  uri: string;
  /** The image file on this machine (inside the server's chroot). */
  file: string;
  env: NodeJS.ProcessEnv;
  /** Options every nbdcrypt command needs for this server (known_hosts, identity). */
  sshArgs: string[];
  socket: string;
  /** `nbdcrypt serve URI --key-file K --listen unix:SOCKET ...extra`. */
  serveArgs(extra?: string[]): string[];
  /** Runs `nbdcrypt ARGV` to completion (never throws on a non-zero status). */
  cli(argv: string[]): { status: number | null; stdout: string; stderr: string };
  stop(): Promise<void>;
}

/** Starts the server and runs `nbdcrypt format URI --size SIZE` (skipped with format: false). */
export async function sftpVolume(size: number, o: { name?: string; sshd?: SshdOptions; format?: boolean } = {}): Promise<SftpVolume> {
  const sshd = await startSshd({ restricted: true, ...o.sshd });
  const { scratch, dir, keyFile, env, sshArgs } = volumeClient(sshd, 'nbdcrypt-sftp-');
  const name = o.name ?? 'disk.img';
  const uri = `sftp://${sshd.user}@${sshd.host}:${sshd.port}${sshd.sftpData.remote}/${name}`;
  const cli = (argv: string[]) => run(process.execPath, [nbdcryptBin, ...argv], { env, timeoutMs: 120_000, allowFail: true });
  const stop = async (): Promise<void> => {
    await sshd.stop();
    scratch.remove();
  };
  if (o.format !== false) {
    // Real argon2id at a small cost: the key is random, and the test needs seconds, not minutes.
    const r = cli(['format', uri, '--size', String(size), '--key-file', keyFile, '--pbkdf-memory', '65536', '--pbkdf-force-iterations', '4', '--pbkdf-parallel', '1', ...sshArgs]);
    if (r.status !== 0) {
      await stop();
      throw new Error(`nbdcrypt format ${uri} exited ${r.status}: ${r.stderr}`);
    }
  }
  const socket = join(dir, 'nbd.sock');
  return {
    sshd,
    dir,
    keyFile,
    uri,
    file: join(sshd.sftpData.local, name),
    env,
    sshArgs,
    socket,
    serveArgs: (extra = []) => ['serve', uri, '--key-file', keyFile, '--listen', `unix:${socket}`, ...sshArgs, ...extra],
    cli,
    stop,
  };
}
