/**
 * Peers for bench/e2e-compare that `nbdcrypt bench e2e` does not need: a LUKS1 image made by
 * `qemu-img create -f luks`, qemu-nbd serving it with its LUKS driver (from a file or from an
 * nbd-server reached through a tunnel), nbdkit's luks filter, one bare ssh2 exec channel's
 * MB/s each way (in its own process, so it can be pinned), and a loopback delay proxy (latency each way plus a bandwidth cap) standing in
 * for a WAN link. What each peer is: docs/performance.md (Peers measured).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinnedCommand } from '../src/cli/bench/cpu-pinning.js';
import { findTool, runToolAsync, startHelper, waitUntil, type Helper } from '../src/cli/bench/e2e-procs.js';
import { existsSync } from 'node:fs';
import { qemuLuksCreate } from '../peers/qemu-luks.js';

export interface Served {
  uri: string;
  stop(): Promise<void>;
}

/** A LUKS1 image (aes-xts-plain64, 512-byte sectors: LUKS1 has no other) of `size` bytes of payload. */
export function qemuLuksImage(path: string, size: number, keyFile: string): void {
  // qemu-img's own defaults, through the helper that retries qemu's PBKDF timing check (it
  // fails when a fast hash finishes inside one scheduler tick of CPU-time accounting).
  qemuLuksCreate(path, keyFile, { cipherAlg: 'aes-256', cipherMode: 'xts', ivgenAlg: 'plain64', hashAlg: 'sha256' }, size);
}

async function untilSocket(helper: Helper, sock: string, what: string): Promise<void> {
  try {
    await waitUntil(what, () => {
      if (helper.exited()) throw new Error(`${what} exited: ${helper.stderr().trim()}`);
      return existsSync(sock);
    }, 30_000);
  } catch (e) {
    await helper.stop();
    throw e;
  }
}

/**
 * qemu-nbd with its LUKS driver on a unix socket. `file` is either a local path or
 * {host, port, exportName} of an NBD server (qemu's nbd block driver as the protocol layer).
 */
export async function startQemuNbdLuks(dir: string, name: string, keyFile: string, file: string | { host: string; port: number; exportName: string }, cpus?: string): Promise<Served> {
  const sock = join(dir, `${name}.sock`);
  const proto = typeof file === 'string' ? `file.filename=${file}` : `file.driver=nbd,file.server.type=inet,file.server.host=${file.host},file.server.port=${file.port},file.export=${file.exportName}`;
  const helper = startHelper(...pinnedCommand(cpus, findTool('qemu-nbd', 'qemu-utils'), [
    '--object', `secret,id=sec0,file=${keyFile}`,
    '--image-opts', `driver=luks,key-secret=sec0,${proto}`,
    '-k', sock, '-x', 'disk', '-t', '--shared=16', '--cache=writeback',
  ]));
  await untilSocket(helper, sock, `qemu-nbd (${name})`);
  return { uri: `nbd+unix:///disk?socket=${sock}`, stop: () => helper.stop() };
}

/** nbdkit's file plugin with the luks filter (LUKS1 only) on a unix socket, foreground. */
export async function startNbdkitLuks(dir: string, image: string, keyFile: string): Promise<Served> {
  const sock = join(dir, 'nbdkit-luks.sock');
  const helper = startHelper(findTool('nbdkit', 'nbdkit'), ['-f', '-U', sock, '-e', 'disk', '--filter=luks', 'file', image, `passphrase=+${keyFile}`]);
  await untilSocket(helper, sock, 'nbdkit luks');
  return { uri: `nbd+unix:///disk?socket=${sock}`, stop: () => helper.stop() };
}

/**
 * The bare ssh2 channels behind nbdcrypt's NBD server (bare-channel-nbd.ts) on a unix socket
 * in `dir`, in their own process on `cpus`, for fio to drive like every other row.
 */
export async function startBareChannelNbd(dir: string, o: { port: number; user: string; keyFile: string; cpus?: string }): Promise<Served> {
  const sock = join(dir, 'bare-channel.sock');
  const script = join(dirname(fileURLToPath(import.meta.url)), 'bare-channel-nbd.js');
  const helper = startHelper(...pinnedCommand(o.cpus, process.execPath, [script, '--port', String(o.port), '--user', o.user, '--key', o.keyFile, '--socket', sock]));
  await untilSocket(helper, sock, 'bare channel NBD server');
  return { uri: `nbd+unix:///disk?socket=${sock}`, stop: () => helper.stop() };
}

/**
 * One bare ssh2 exec channel each way (bare-channel.ts) in its own process on `cpus`, moving
 * `bytes` per direction, best of `rounds`.
 */
export async function bareChannelMbps(o: { port: number; user: string; keyFile: string; bytes: number; rounds: number; cpus?: string }): Promise<{ readMbps: number; writeMbps: number }> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'bare-channel.js');
  const args = [script, '--port', String(o.port), '--user', o.user, '--key', o.keyFile, '--bytes', String(o.bytes), '--rounds', String(o.rounds)];
  const out = await runToolAsync(...pinnedCommand(o.cpus, process.execPath, args), 1_800_000);
  return JSON.parse(out.trim().split('\n').pop()!) as { readMbps: number; writeMbps: number };
}

export interface DelayProxy {
  port: number;
  stop(): Promise<void>;
}

/**
 * A TCP proxy on 127.0.0.1 to `upstreamPort` that delivers every chunk `delayMs` after it
 * would have left a link of `bytesPerSec` (a token bucket per direction), like a WAN hop.
 * It holds at most about two bandwidth-delay products per direction, then stops reading, so
 * the sender feels the link's window like on a real path.
 */
export async function startDelayProxy(upstreamPort: number, delayMs: number, bytesPerSec: number): Promise<DelayProxy> {
  const limit = Math.max(4 << 20, Math.ceil(bytesPerSec * (delayMs / 1000) * 2));
  const sockets = new Set<Socket>();
  const pipe = (src: Socket, dst: Socket): void => {
    const queue: { b: Buffer; at: number }[] = [];
    let queued = 0;
    let linkFree = 0;
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    const release = (): void => {
      timer = undefined;
      const now = performance.now();
      while (queue.length && queue[0]!.at <= now) {
        const { b } = queue.shift()!;
        queued -= b.length;
        if (!dst.destroyed) dst.write(b);
      }
      if (queued < limit / 2 && src.isPaused()) src.resume();
      if (queue.length) timer = setTimeout(release, Math.max(0, queue[0]!.at - performance.now()));
      else if (ended) dst.end();
    };
    src.on('data', (b: Buffer) => {
      const now = performance.now();
      const start = Math.max(now, linkFree);
      linkFree = start + (b.length / bytesPerSec) * 1000;
      queue.push({ b, at: linkFree + delayMs });
      queued += b.length;
      if (queued >= limit) src.pause();
      if (!timer) timer = setTimeout(release, Math.max(0, queue[0]!.at - now));
    });
    src.on('end', () => {
      ended = true;
      if (!queue.length && !timer) dst.end();
    });
  };
  const server: Server = createServer((down) => {
    const up = connect({ host: '127.0.0.1', port: upstreamPort });
    for (const s of [down, up]) {
      s.setNoDelay(true);
      sockets.add(s);
      s.on('error', () => {
        down.destroy();
        up.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
    pipe(down, up);
    pipe(up, down);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
