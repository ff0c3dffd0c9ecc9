/**
 * Shared setup of the end-to-end `nbdcrypt serve` tests (not a test file itself): a remote
 * volume (peers/remote-volume.ts) registered as a fixture, a real tree of small files to copy
 * (from /usr), and the scanner that looks for plaintext blocks in the remote's file. See
 * README "Workflow".
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { NbdcryptProc } from '../../peers/nbdcrypt.js';
import type { SshdPeer } from '../../peers/sshd.js';
import type { NbdfuseMount } from '../../peers/nbdfuse-mount.js';
import { remoteVolume, type RemoteVolume } from '../../peers/remote-volume.js';
import { requireTool, run, sleep, startProcess, waitFor } from '../../peers/tools.js';

export const MiB = 1024 * 1024;

/** Directories likely to hold many small real files on any Debian install (the last two catch all). */
const SOURCES = ['/usr/share/doc', '/usr/share/man', '/usr/share/locale', '/usr/lib/python3', '/usr/share/perl', '/usr/include', '/usr/share/i18n', '/usr/share/zoneinfo', '/usr/lib', '/usr/share'];

export interface SourceTree {
  /** Paths relative to '/', for rsync --files-from. */
  files: string[];
  bytes: number;
  listFile: string;
}

/**
 * Picks regular files from /usr in sorted directory order (deterministic on one install)
 * until both `minBytes` and `o.minFiles` are reached; each file at most `o.maxFileBytes`
 * (default 4 MiB). Writes the rsync file list.
 */
export function pickTree(minBytes: number, listFile: string, o: { minFiles?: number; maxFileBytes?: number } = {}): SourceTree {
  const files: string[] = [];
  const seen = new Set<string>();
  let bytes = 0;
  const minFiles = o.minFiles ?? 0;
  const maxFileBytes = o.maxFileBytes ?? 4 * MiB;
  const enough = (): boolean => bytes >= minBytes && files.length >= minFiles;
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (enough()) return;
      const path = join(dir, name);
      let st;
      try {
        st = lstatSync(path);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(path);
      else if (st.isFile() && st.size <= maxFileBytes && !seen.has(path)) {
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
  for (const s of SOURCES) if (!enough()) walk(s);
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

/**
 * rsyncs `tree` into `dest` at a bandwidth that makes it last about `seconds`, and cuts the
 * SSH link `cuts` times meanwhile (sshd's session processes SIGKILLed), each time waiting
 * for `srv` to log its reconnect, then 1.5 s of traffic on the new link.
 * Asserts that every cut landed while rsync ran, that each one was followed by a reconnect
 * and that rsync succeeded; returns what it achieved.
 */
export async function rsyncWithLinkCuts(tree: SourceTree, dest: string, o: { sshd: SshdPeer; srv: NbdcryptProc; cuts: number; seconds: number; timeoutMs: number }): Promise<{ cuts: number; reconnects: number; seconds: number; lastCutSeconds: number }> {
  const reconnects = (): number => (o.srv.proc.stderr().match(/reconnected after/g) ?? []).length;
  const bwlimitK = Math.max(256, Math.floor(tree.bytes / 1024 / o.seconds));
  const rsync = startProcess(requireTool('rsync', 'rsync'), ['-a', `--bwlimit=${bwlimitK}`, `--files-from=${tree.listFile}`, '/', `${dest}/`]);
  const t0 = Date.now();
  const atStart = reconnects();
  let rsyncDone = false;
  void rsync.exited.then(() => (rsyncDone = true));
  let cuts = 0;
  let lastCut = t0;
  try {
    await sleep(2000);
    while (cuts < o.cuts && !rsyncDone) {
      const before = reconnects();
      const killed = await o.sshd.killConnections();
      assert.ok(killed > 0, 'an sshd process served the session');
      // Counted only if rsync was still copying when the link went down.
      if (!rsyncDone) {
        cuts++;
        lastCut = Date.now();
      }
      await waitFor(`reconnect after cut ${cuts}`, () => reconnects() > before, 60_000, 50);
      await sleep(1500);
    }
  } finally {
    await waitFor('rsync to finish', () => rsyncDone, o.timeoutMs, 200).catch(async (e: unknown) => {
      await rsync.stop();
      throw e;
    });
  }
  assert.equal(cuts, o.cuts, `only ${cuts} cuts landed before rsync finished`);
  assert.equal(await rsync.exited, 0, `rsync failed: ${rsync.stderr()}`);
  const seen = reconnects() - atStart;
  assert.ok(seen >= cuts, `${seen} reconnects for ${cuts} cuts`);
  return { cuts, reconnects: seen, seconds: (Date.now() - t0) / 1000, lastCutSeconds: (lastCut - t0) / 1000 };
}
