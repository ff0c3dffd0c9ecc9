/**
 * Peers for bench/e2e-compare that `nbdcrypt bench e2e` does not need: a LUKS1 image made by
 * `qemu-img create -f luks`, qemu-nbd serving it with its LUKS driver (from a file or from an
 * nbd-server reached through a tunnel), nbdkit's luks filter, one raw ssh2 channel's MB/s
 * each way, and a loopback delay proxy (latency each way plus a bandwidth cap) standing in
 * for a WAN link. What each peer is: docs/performance.md (Peers measured).
 */
import { spawn } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { findTool, runTool, startHelper, waitUntil, type Helper } from '../src/cli/bench/e2e-procs.js';
import { remoteTransport } from '../src/backend/remote-target.js';
import { existsSync } from 'node:fs';

export interface Served {
  uri: string;
  stop(): Promise<void>;
}

/** A LUKS1 image (aes-xts-plain64, 512-byte sectors: LUKS1 has no other) of `size` bytes of payload. */
export function qemuLuksImage(path: string, size: number, keyFile: string): void {
  runTool(findTool('qemu-img', 'qemu-utils'), ['create', '-q', '-f', 'luks', '--object', `secret,id=sec0,file=${keyFile}`, '-o', 'key-secret=sec0,iter-time=10', path, String(size)]);
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
export async function startQemuNbdLuks(dir: string, name: string, keyFile: string, file: string | { host: string; port: number; exportName: string }): Promise<Served> {
  const sock = join(dir, `${name}.sock`);
  const proto = typeof file === 'string' ? `file.filename=${file}` : `file.driver=nbd,file.server.type=inet,file.server.host=${file.host},file.server.port=${file.port},file.export=${file.exportName}`;
  const helper = startHelper(findTool('qemu-nbd', 'qemu-utils'), [
    '--object', `secret,id=sec0,file=${keyFile}`,
    '--image-opts', `driver=luks,key-secret=sec0,${proto}`,
    '-k', sock, '-x', 'disk', '-t', '--shared=16', '--cache=writeback',
  ]);
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
 * A byte sink/source in its own process on 127.0.0.1: a client that sends 'W' has what it
 * writes counted and dropped; one that sends 'R' gets zeroes as fast as it reads.
 */
export async function startSinkSource(): Promise<{ port: number; stop(): Promise<void> }> {
  const script = `const net=require('net');const z=Buffer.alloc(1<<20);
net.createServer(s=>{s.once('data',b=>{if(b[0]===82){const f=()=>{while(s.write(z));};s.on('drain',f);f();}else{s.resume();}});s.on('error',()=>{});})
.listen(0,'127.0.0.1',function(){process.stdout.write(String(this.address().port)+'\\n');});`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitUntil('sink/source to listen', () => /\d+\n/.test(out), 10_000);
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    port: Number(out.trim()),
    stop: async () => {
      child.kill('SIGKILL');
      await gone;
    },
  };
}

/** MB/s of one ssh2 channel (nbdcrypt's own SSH transport) to the sink/source, each way. */
export async function rawChannelMbps(target: string, opts: { knownHostsPath: string; identity: string[]; sshConfigPath: string }, seconds: number): Promise<{ readMbps: number; writeMbps: number }> {
  const { transport } = remoteTransport(target, opts);
  try {
    const measure = async (mode: 'R' | 'W'): Promise<number> => {
      const ch: Duplex = await transport.open();
      ch.write(mode);
      const chunk = Buffer.alloc(1 << 20);
      let bytes = 0;
      const t0 = performance.now();
      const end = t0 + seconds * 1000;
      if (mode === 'R') {
        await new Promise<void>((resolve) => {
          ch.on('data', (b: Buffer) => {
            bytes += b.length;
            if (performance.now() >= end) resolve();
          });
        });
      } else {
        while (performance.now() < end) {
          if (!ch.write(chunk)) await new Promise((r) => ch.once('drain', r));
          bytes += chunk.length;
        }
      }
      const mbps = bytes / ((performance.now() - t0) / 1000) / 1e6;
      ch.destroy();
      return mbps;
    };
    const readMbps = await measure('R');
    const writeMbps = await measure('W');
    return { readMbps, writeMbps };
  } finally {
    await transport.close();
  }
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
