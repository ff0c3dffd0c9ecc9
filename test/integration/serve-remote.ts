/**
 * Shared setup of the end-to-end `nbdcrypt serve` tests (not a test file itself): a real sshd
 * and nbd-server on loopback, a remote volume formatted through the CLI over ssh://, the
 * argument list that serves it, a real tree of small files to copy (from /usr), and the
 * scanner that looks for plaintext blocks in the remote's file. See README "Workflow".
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, lstatSync, openSync, readSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { startNbdServer, type NbdServerPeer } from '../../peers/nbd-server.js';
import { nbdcryptBin, type NbdcryptProc } from '../../peers/nbdcrypt.js';
import type { NbdfuseMount } from '../../peers/nbdfuse-mount.js';
import { startSshd, type SshdPeer } from '../../peers/sshd.js';
import { run, scratchDir } from '../../peers/tools.js';

export const MiB = 1024 * 1024;

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

/** Starts sshd + nbd-server (export of `size` bytes) and runs `nbdcrypt format ssh://...`. */
export async function remoteVolume(size: number): Promise<RemoteVolume> {
  const sshd = await startSshd();
  const nbd = await startNbdServer({ size }).catch(async (e: unknown) => {
    await sshd.stop();
    throw e;
  });
  const scratch = scratchDir('nbdcrypt-serve-');
  const dir = scratch.path;
  const keyFile = join(dir, 'volume.key');
  writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: dir };
  delete env.SSH_AUTH_SOCK;
  const uri = `ssh://${sshd.user}@${sshd.host}:${sshd.port}/${nbd.exportName}?nbd=127.0.0.1:${nbd.port}`;
  const sshArgs = ['--known-hosts', knownHosts, '--identity', sshd.userKey];
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

/** Directories likely to hold many small real files on any Debian install. */
const SOURCES = ['/usr/share/doc', '/usr/share/man', '/usr/share/locale', '/usr/lib/python3', '/usr/share/perl', '/usr/include', '/usr/share/i18n', '/usr/share/zoneinfo', '/usr/lib'];

export interface SourceTree {
  /** Paths relative to '/', for rsync --files-from. */
  files: string[];
  bytes: number;
  listFile: string;
}

/** Picks regular files (each ≤ 4 MiB) from /usr until `minBytes`; writes the rsync file list. */
export function pickTree(minBytes: number, listFile: string): SourceTree {
  const files: string[] = [];
  const seen = new Set<string>();
  let bytes = 0;
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (bytes >= minBytes) return;
      const path = join(dir, name);
      let st;
      try {
        st = lstatSync(path);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(path);
      else if (st.isFile() && st.size <= 4 * MiB && !seen.has(path)) {
        // Only files we can read (rsync fails on unreadable ones).
        try {
          closeSync(openSync(path, 'r'));
        } catch {
          continue;
        }
        seen.add(path);
        files.push(path.slice(1));
        bytes += st.size;
      }
    }
  };
  for (const s of SOURCES) if (bytes < minBytes) walk(s);
  writeFileSync(listFile, files.join('\n') + '\n');
  return { files, bytes, listFile };
}

function blockKey(block: Buffer): string {
  return createHash('sha256').update(block).digest('base64').slice(0, 22);
}

/** Hashes of every full, non-zero, 4 KiB-aligned 4 KiB block of the tree's files. */
export function plaintextBlocks(tree: SourceTree): Set<string> {
  const out = new Set<string>();
  const zero = Buffer.alloc(4096);
  const buf = Buffer.alloc(4 * MiB);
  for (const f of tree.files) {
    const fd = openSync(`/${f}`, 'r');
    try {
      let n;
      while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) {
        for (let at = 0; at + 4096 <= n; at += 4096) {
          const b = buf.subarray(at, at + 4096);
          if (!b.equals(zero)) out.add(blockKey(b));
        }
        if (n < buf.length) break;
      }
    } finally {
      closeSync(fd);
    }
  }
  return out;
}

/** How many distinct blocks of `wanted` appear 4 KiB-aligned in `file`. */
export function scanForBlocks(file: string, wanted: Set<string>): number {
  const found = new Set<string>();
  const buf = Buffer.alloc(4 * MiB);
  const fd = openSync(file, 'r');
  try {
    let pos = 0;
    let n;
    while ((n = readSync(fd, buf, 0, buf.length, pos)) > 0) {
      for (let at = 0; at + 4096 <= n; at += 4096) {
        const k = blockKey(buf.subarray(at, at + 4096));
        if (wanted.has(k)) found.add(k);
      }
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return found.size;
}

/** rsync -c dry run of the list against DEST; returns the itemized differences ('' = none). */
export function rsyncDiff(tree: SourceTree, dest: string): string {
  const r = run('rsync', ['-a', '-c', '-n', '--itemize-changes', `--files-from=${tree.listFile}`, '/', `${dest}/`], { timeoutMs: 300_000 });
  return r.stdout.trim();
}

/** What a serve test over a remote volume holds: set up before its tests, torn down after. */
export interface RemoteTreeFixture {
  vol: RemoteVolume;
  tree: SourceTree;
  srv?: NbdcryptProc;
  mnt?: NbdfuseMount;
}

/**
 * Registers before/after hooks in the calling describe(): a formatted remote volume of
 * `exportSize` bytes and a source tree of at least `treeBytes`; after, the mount, the serve
 * process the test left in `srv` and the peers are stopped, in that order.
 */
export function remoteTreeFixture(exportSize: number, treeBytes: number): RemoteTreeFixture {
  const f = {} as RemoteTreeFixture;
  before(async () => {
    f.vol = await remoteVolume(exportSize);
    f.tree = pickTree(treeBytes, join(f.vol.dir, 'files.txt'));
  });
  after(async () => {
    await f.mnt?.cleanup().catch(() => undefined);
    await f.srv?.stop();
    await f.vol?.stop();
  });
  return f;
}
