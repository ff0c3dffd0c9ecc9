/**
 * One writer per image: `PATH.lock` next to the image, created exclusively (SSH_FXF_CREAT |
 * SSH_FXF_EXCL, atomic on the server) and holding who made it: host, pid and start time.
 * A lock already there is refused naming its holder; `--break-lock` removes it first. It
 * is advisory: other programs on the server do not look at it. See docs/sftp.md (lock).
 */
import { hostname } from 'node:os';
import { NbdcryptError } from '../errors.js';
import type { SftpClient } from './sftp-client.js';
import { describeStatus, statusOf, FX } from './sftp-status.js';
import { PFLAG as O } from './sftp-wire.js';

/** What this process writes into its lock file. */
export function lockText(startedAt: Date): string {
  return `${holderPrefix()}started=${startedAt.toISOString()}\n`;
}

function holderPrefix(): string {
  return `nbdcrypt host=${hostname()} pid=${process.pid} `;
}

export interface LockTarget {
  /** Secret-free name for errors (the target URI). */
  name: string;
  /** The lock file's path on the server. */
  path: string;
  /** Remove an existing lock first (--break-lock). */
  breakLock: boolean;
}

/**
 * Creates the lock file with `text` ('created', or 'broken' when --break-lock removed
 * another holder's first), or finds one this very process holds
 * ('shared': a second open of the same image in one process, as `bench e2e` does; the
 * first holder removes it), or throws EBUSY naming the holder of the one that is there.
 */
export async function takeLock(sftp: SftpClient, t: LockTarget, text: string): Promise<'created' | 'broken' | 'shared'> {
  let broken = false;
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await p<Buffer>((cb) => sftp.open(t.path, O.WRITE | O.CREAT | O.EXCL, cb));
      const data = Buffer.from(text);
      await p<void>((cb) => sftp.write(handle, 0, data, 0, data.length, cb));
      await p<void>((cb) => sftp.close(handle, cb));
      return broken ? 'broken' : 'created';
    } catch (e) {
      const holder = await readLock(sftp, t.path);
      if (holder === undefined) throw lockError(t, e as Error);
      if (holder.startsWith(holderPrefix())) return 'shared';
      if (!t.breakLock || attempt > 0) {
        throw new NbdcryptError('EBUSY', `${t.name} is in use: ${t.path} says ${holder.trim() || '(empty)'}; if that process is gone, rerun with --break-lock`);
      }
      await p<void>((cb) => sftp.remove(t.path, cb)).catch((err: Error) => {
        throw lockError(t, err);
      });
      broken = true;
    }
  }
}

/** Removes the lock if it is still the one `text` made; says whether it did. */
export async function dropLock(sftp: SftpClient, path: string, text: string): Promise<boolean> {
  if ((await readLock(sftp, path)) !== text) return false;
  await p<void>((cb) => sftp.remove(path, cb));
  return true;
}

/** The lock file's text, or undefined if there is none. */
async function readLock(sftp: SftpClient, path: string): Promise<string | undefined> {
  try {
    const handle = await p<Buffer>((cb) => sftp.open(path, O.READ, cb));
    const buf = Buffer.alloc(4096);
    const n = await p<number>((cb) => sftp.read(handle, 0, buf, 0, buf.length, cb));
    await p<void>((cb) => sftp.close(handle, cb)).catch(() => undefined);
    return buf.subarray(0, n).toString('utf8');
  } catch (e) {
    if (statusOf(e) === FX.NO_SUCH_FILE) return undefined;
    throw e;
  }
}

function lockError(t: LockTarget, e: Error): NbdcryptError {
  const code = statusOf(e) === FX.PERMISSION_DENIED ? 'EACCES' : 'EIO';
  return new NbdcryptError(code, `${t.name}: cannot create the lock file ${t.path} (${describeStatus(e)}); the directory must be writable`, { cause: e });
}

function p<T>(f: (cb: (err: Error | undefined, v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v))));
}
