/**
 * One writer per local image: an advisory flock(LOCK_EX) on the image's descriptor (native
 * addon, file-lock.c), held while it is open. The kernel drops it when the descriptor closes
 * or the process dies, so no stale lock is ever left to break. Opens of the same file in
 * this one process share it (bench e2e serves one target twice). The holder's pid comes from
 * /proc/locks. Without the native addon there is no lock, and a warning says so once.
 */
import { readFileSync } from 'node:fs';
import { constants as os } from 'node:os';
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';
import { loadNative, nativeLoadError } from '../native-addon.js';

/** dev:ino → descriptors of this process holding the lock on that file. */
const held = new Map<string, number>();
let warned = false;

/** Locks `fd` (the open image at `path`, with its stat dev/ino) or throws EBUSY naming the holder. */
export function lockImage(fd: number, path: string, st: { dev: number; ino: number }): () => void {
  const key = `${st.dev}:${st.ino}`;
  const release = (): void => {
    const n = (held.get(key) ?? 1) - 1;
    if (n > 0) held.set(key, n);
    else held.delete(key);
  };
  if (held.has(key)) {
    held.set(key, held.get(key)! + 1);
    return release;
  }
  const a = loadNative();
  if (!a || typeof a.flockExclusive !== 'function') {
    if (!warned) log.warn(`no lock on ${path}: the native addon is missing (${nativeLoadError() ?? 'no flock'}); make sure only one process writes it`);
    warned = true;
    return () => undefined;
  }
  const r = a.flockExclusive(fd);
  if (r === -os.errno.EWOULDBLOCK) {
    const pid = holderPid(st.ino);
    const who = pid ? `process ${pid}${nameOf(pid)}` : 'another process';
    throw new NbdcryptError('EBUSY', `${path} is in use: ${who} holds a lock on it; stop that process first (the lock goes away with it)`);
  }
  if (r < 0) log.warn(`no lock on ${path}: flock failed (errno ${-r}); make sure only one process writes it`);
  held.set(key, 1);
  return release;
}

/** The pid of a FLOCK WRITE lock on inode `ino` in /proc/locks ("1: FLOCK ADVISORY WRITE PID MAJ:MIN:INO 0 EOF"). */
function holderPid(ino: number): number | undefined {
  try {
    for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f[1] === 'FLOCK' && f[3] === 'WRITE' && f[5]?.endsWith(`:${ino}`)) return Number(f[4]);
    }
  } catch {
    // no /proc: the message names no pid
  }
  return undefined;
}

/** " (comm)": the short name only, since a command line can carry secrets. */
function nameOf(pid: number): string {
  try {
    return ` (${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()})`;
  } catch {
    return '';
  }
}
