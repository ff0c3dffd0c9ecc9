/**
 * An RBD image of a private cluster (peers/ceph.ts) exported over NBD by qemu-nbd with
 * qemu's rbd driver (Debian package qemu-block-extra) on a loopback TCP port: `--cache=none`
 * (qemu then turns librbd's own write-back cache off, so a write is acknowledged only once
 * every replica has it), `--persistent` and `--shared` clients (more than one makes qemu-nbd
 * advertise multi-conn; every connection goes through the same librbd image handle). Tracked,
 * killed and restarted by PID. See docs/scaling-out.md.
 */
import { existsSync, readdirSync } from 'node:fs';
import { canConnect } from '../src/cli/bench/e2e-procs.js';
import type { CephCluster } from './ceph.js';
import { freePort, requireTool, run, startProcess, waitFor, type Proc } from './tools.js';

export interface RbdExportOptions {
  /** Clients qemu-nbd serves at once (default 8). */
  shared?: number;
  /** NBD export name (default 'disk'). */
  exportName?: string;
}

export interface RbdExport {
  host: string;
  port: number;
  exportName: string;
  /** nbd://127.0.0.1:PORT/NAME */
  uri: string;
  /** The exporter's argument list, for reports. */
  args: string[];
  pid(): number;
  /** librbd's value of a config option inside the running exporter (its admin socket). */
  clientConfig(option: string): string;
  /** SIGKILL (a crash); its exclusive lock on the image is broken by the next owner. */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Makes `pool/image` of `bytes` in the cluster and exports it. */
export async function exportRbdImage(cluster: CephCluster, image: string, bytes: number, opts: RbdExportOptions = {}): Promise<RbdExport> {
  const bin = requireTool('qemu-nbd', 'qemu-utils');
  // qemu loads its rbd driver as a module; without it qemu-nbd only says "Unknown driver".
  const moduleDirs = ['/usr/lib/qemu', ...readdirSync('/usr/lib').map((d) => `/usr/lib/${d}/qemu`)];
  if (!moduleDirs.some((d) => existsSync(`${d}/block-rbd.so`))) {
    throw new Error("qemu's rbd driver (block-rbd.so) is missing: apt-get install qemu-block-extra");
  }
  cluster.rbd(['create', `${cluster.pool}/${image}`, '--size', `${bytes}B`]);
  const host = '127.0.0.1';
  const port = await freePort();
  const exportName = opts.exportName ?? 'disk';
  const args = [
    '--image-opts', `driver=rbd,pool=${cluster.pool},image=${image},conf=${cluster.conf}`,
    '--cache=none', '--persistent', `--shared=${opts.shared ?? 8}`,
    '--export-name', exportName, '--bind', host, '--port', String(port),
  ];
  let proc: Proc | undefined;
  const kill = async (): Promise<void> => {
    if (!proc) return;
    proc.child.kill('SIGKILL');
    await proc.exited;
    proc = undefined;
  };
  const onExit = (): void => void proc?.child.kill('SIGKILL');
  process.on('exit', onExit);
  const start = async (): Promise<void> => {
    const p = startProcess(bin, args);
    proc = p;
    await waitFor(`qemu-nbd on ${host}:${port}`, () => {
      if (p.child.exitCode !== null) throw new Error(`qemu-nbd exited (status ${p.child.exitCode}): ${p.stderr().trim()}`);
      return canConnect(port, host);
    }, 60_000, 100);
  };
  try {
    await start();
  } catch (e) {
    process.off('exit', onExit);
    await kill();
    throw e;
  }
  return {
    host,
    port,
    exportName,
    uri: `nbd://${host}:${port}/${exportName}`,
    args,
    pid: () => proc?.pid ?? -1,
    clientConfig: (option) => {
      const socket = `${cluster.dir}/run/client.admin.${proc?.pid}.asok`;
      const out = run(requireTool('ceph', 'ceph-common'), ['--admin-daemon', socket, 'config', 'get', option], { timeoutMs: 20_000 }).stdout;
      return String((JSON.parse(out) as Record<string, unknown>)[option]);
    },
    kill,
    start,
    stop: async () => {
      process.off('exit', onExit);
      await proc?.stop(10_000);
      proc = undefined;
    },
  };
}
