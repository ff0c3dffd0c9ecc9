/**
 * Starts Debian's nbd-server 3.24 on loopback with a private config file, for integration
 * tests. It runs as a daemon (its `-d` mode serves one connection and exits), so it is
 * tracked by its PID file and stopped, killed or restarted by PID, together with the
 * per-connection children it forks. The process-tree helpers are the shipped bench's
 * (src/cli/bench/process-tree.ts), re-exported for the tests.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pinnedCommand } from '../src/cli/bench/cpu-pinning.js';
import { killAll, processTree } from '../src/cli/bench/process-tree.js';
import { canConnect, freePort, requireTool, run, scratchDir, sleep, waitFor } from './tools.js';

export { childrenOf, isAlive } from '../src/cli/bench/process-tree.js';

export interface NbdServerOptions {
  /** Export size in bytes (default 64 MiB); ignored when `file` exists. */
  size?: number;
  exportName?: string;
  /** Listen on a unix socket instead of TCP (nbd-server 3.24 does one or the other). */
  unixSocket?: boolean;
  readOnly?: boolean;
  /** taskset CPU list for the daemon; its per-connection forks inherit it. */
  cpus?: string;
}

export interface NbdServerPeer {
  host: string;
  port: number;
  exportName: string;
  /** The exported file (what the remote holds). */
  file: string;
  /** The unix socket path when `unixSocket` was asked for. */
  socketPath?: string;
  dir: string;
  uri: string;
  /** PID of the listening daemon. */
  pid(): number;
  /** SIGKILL the daemon and every connection child (a crash). */
  kill(): Promise<void>;
  /** Starts it again on the same port and file. */
  start(): Promise<void>;
  /** kill() then start(). */
  restart(): Promise<void>;
  /** Stops it and removes its directory. */
  stop(): Promise<void>;
}

export async function startNbdServer(opts: NbdServerOptions = {}): Promise<NbdServerPeer> {
  const bin = requireTool('nbd-server', 'nbd-server');
  const dir = scratchDir('nbdcrypt-nbd-server-');
  const host = '127.0.0.1';
  const port = await freePort();
  const exportName = opts.exportName ?? 'disk';
  const file = join(dir.path, 'export.img');
  const pidFile = join(dir.path, 'nbd-server.pid');
  const socketPath = opts.unixSocket ? join(dir.path, 'nbd.sock') : undefined;
  writeFileSync(file, '');
  run('truncate', ['-s', String(opts.size ?? 64 * 1024 * 1024), file]);
  const config = join(dir.path, 'config');
  writeFileSync(
    config,
    [
      '[generic]',
      `listenaddr = ${host}`,
      ...(socketPath ? [`unixsock = ${socketPath}`] : [`port = ${port}`]),
      'allowlist = true',
      `[${exportName}]`,
      `exportname = ${file}`,
      'flush = true',
      'fua = true',
      'trim = true',
      `readonly = ${opts.readOnly ? 'true' : 'false'}`,
      '',
    ].join('\n'),
  );
  let daemonPid = -1;

  const start = async (): Promise<void> => {
    rmSync(pidFile, { force: true });
    if (socketPath) rmSync(socketPath, { force: true });
    const deadline = Date.now() + 10_000;
    // Right after a kill the port may still be held by a dying child: retry briefly.
    for (;;) {
      const r = run(...pinnedCommand(opts.cpus, bin, ['-C', config, '-p', pidFile]), { allowFail: true, timeoutMs: 10_000 });
      if (r.status === 0) break;
      if (Date.now() > deadline) throw new Error(`nbd-server failed to start: ${r.stderr.trim()}`);
      await sleep(100);
    }
    await waitFor('nbd-server pid file', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', 10_000);
    daemonPid = Number(readFileSync(pidFile, 'utf8').trim());
    if (socketPath) await waitFor('nbd-server unix socket', () => existsSync(socketPath), 10_000);
    else await waitFor(`nbd-server listening on ${host}:${port}`, () => canConnect(port, host), 10_000);
  };

  const kill = async (): Promise<void> => {
    if (daemonPid <= 0) return;
    await killAll(processTree(daemonPid), 'nbd-server processes to exit');
    daemonPid = -1;
  };

  // The daemon outlives a test process that exits without stop(): kill it on the way out.
  const onExit = (): void => {
    if (daemonPid <= 0) return;
    for (const p of processTree(daemonPid)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.on('exit', onExit);
  try {
    await start();
  } catch (e) {
    process.off('exit', onExit);
    await kill();
    dir.remove();
    throw e;
  }
  return {
    host,
    port,
    exportName,
    file,
    socketPath,
    dir: dir.path,
    uri: socketPath ? `nbd+unix:///${exportName}?socket=${socketPath}` : `nbd://${host}:${port}/${exportName}`,
    pid: () => daemonPid,
    kill,
    start,
    restart: async () => {
      await kill();
      await start();
    },
    stop: async () => {
      process.off('exit', onExit);
      await kill();
      dir.remove();
    },
  };
}
