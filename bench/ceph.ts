/**
 * Throughput of nbdcrypt on a Ceph RBD image next to the nbd-server-on-a-file path, in one
 * run on one machine: nbdcopy writes SIZE of random data (from a file in the page cache,
 * with --flush) into each export and reads it back to null:. Rows: qemu-nbd on RBD with no
 * encryption (the ceiling), nbdcrypt on that RBD export with 1 and with 4 connections,
 * nbd-server on a file with no encryption, and nbdcrypt on that nbd-server. The cluster is
 * peers/ceph.ts's (one monitor, two memstore OSDs, pool size 2: objects live in RAM, so the
 * figures show the cost of the path, not of disks). Rounds are interleaved; each row keeps
 * its best round. See docs/scaling-out.md.
 * Run: npm run build && node dist/bench/ceph.js [--size 256M] [--rounds 2] [--ssh]
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { startCeph, type CephCluster } from '../peers/ceph.js';
import { startNbdServer, type NbdServerPeer } from '../peers/nbd-server.js';
import { nbdcopyAsync } from '../peers/nbdcopy.js';
import { nbdcryptBin, startNbdcrypt, type NbdcryptProc } from '../peers/nbdcrypt.js';
import { exportRbdImage, type RbdExport } from '../peers/rbd-export.js';
import { startSshd, type SshdPeer } from '../peers/sshd.js';
import { requireTool, run, scratchDir } from '../peers/tools.js';
import { parseSize } from '../src/size.js';
import { benchArgs } from './bench-args.js';

const USAGE = `Usage: node dist/bench/ceph.js [--size 256M] [--rounds 2] [--connections 4] [--ssh]
  nbdcopy write (--flush) and read of SIZE through: qemu-nbd on a Ceph RBD image (no
  encryption), nbdcrypt on that export (1 and N connections), nbd-server on a file (no
  encryption), nbdcrypt on that nbd-server. A private Ceph cluster (peers/ceph.ts: one
  monitor, two memstore OSDs, pool size 2) is started and removed; needs root and the
  packages ceph-mon ceph-osd ceph-common qemu-block-extra.
  --ssh   reach both remotes through a loopback sshd (ssh://...?nbd=H:P) instead of nbd://`;

/** LUKS2 header and keyslots in front of the data (nbdcrypt format's default). */
const LUKS_HEADER = 16 * 1024 * 1024;

interface Row {
  label: string;
  /** Starts what serves the row (if anything) and returns its URI and how to stop it. */
  open: () => Promise<{ uri: string; stop: () => Promise<unknown> }>;
  write: number;
  read: number;
}

function randomFile(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < bytes; done += 4 * 1024 * 1024) writeSync(fd, randomBytes(Math.min(4 * 1024 * 1024, bytes - done)));
  } finally {
    closeSync(fd);
  }
}

async function main(): Promise<void> {
  const values = benchArgs(USAGE, {
    size: { type: 'string', default: '256M' },
    rounds: { type: 'string', default: '2' },
    connections: { type: 'string', default: '4' },
    ssh: { type: 'boolean', default: false },
  });
  const size = parseSize(values.size!, '--size');
  const rounds = Number(values.rounds);
  const conns = Number(values.connections);
  requireTool('nbdcopy', 'libnbd-bin');
  const dir = scratchDir('nbdcrypt-bench-ceph-');
  const key = join(dir.path, 'volume.key');
  const source = join(dir.path, 'source.img');
  randomFile(key, 32);
  randomFile(source, size);
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: dir.path };
  delete env.SSH_AUTH_SOCK;
  const stops: (() => Promise<unknown>)[] = [];
  const later = <T extends { stop: () => Promise<unknown> }>(x: T): T => (stops.unshift(() => x.stop()), x);
  try {
    const cluster: CephCluster = later(await startCeph());
    const rbdRaw: RbdExport = later(await exportRbdImage(cluster, 'raw', size));
    const rbdEnc: RbdExport = later(await exportRbdImage(cluster, 'enc', size + LUKS_HEADER));
    const fileRaw: NbdServerPeer = later(await startNbdServer({ size }));
    const fileEnc: NbdServerPeer = later(await startNbdServer({ size: size + LUKS_HEADER }));
    let sshd: SshdPeer | undefined;
    const sshArgs: string[] = [];
    if (values.ssh) {
      sshd = later(await startSshd());
      const knownHosts = join(dir.path, 'known_hosts');
      writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
      sshArgs.push('--known-hosts', knownHosts, '--identity', sshd.userKey);
    }
    const target = (host: string, port: number, name: string): string =>
      sshd ? `ssh://${sshd.user}@${sshd.host}:${sshd.port}/${name}?nbd=${host}:${port}` : `nbd://${host}:${port}/${name}`;
    const plain = (label: string, uri: string): Row => ({ label, open: async () => ({ uri, stop: async () => undefined }), write: 0, read: 0 });
    // One serve process per volume at a time, as in use: each row starts its own and stops it.
    const encrypted = (label: string, uri: string, connections: number): Row => ({
      label,
      open: async () => {
        const sock = join(dir.path, 'serve.sock');
        const srv: NbdcryptProc = await startNbdcrypt(['serve', uri, '--key-file', key, '--listen', `unix:${sock}`, '--connections', String(connections), ...sshArgs], { env, timeoutMs: 60_000 });
        return { uri: srv.uri(), stop: () => srv.stop() };
      },
      write: 0,
      read: 0,
    });
    const format = (uri: string): void =>
      void run(process.execPath, [nbdcryptBin, 'format', uri, '--key-file', key, '--pbkdf-memory', '65536', '--pbkdf-force-iterations', '4', '--pbkdf-parallel', '1', ...sshArgs], { env, timeoutMs: 120_000 });
    const rbdTarget = target(rbdEnc.host, rbdEnc.port, rbdEnc.exportName);
    const fileTarget = target(fileEnc.host, fileEnc.port, fileEnc.exportName);
    format(rbdTarget);
    format(fileTarget);
    const rows: Row[] = [
      plain('qemu-nbd on RBD, no encryption', rbdRaw.uri),
      encrypted('nbdcrypt on RBD, 1 connection', rbdTarget, 1),
      encrypted(`nbdcrypt on RBD, ${conns} connections`, rbdTarget, conns),
      plain('nbd-server on a file, no encryption', fileRaw.uri),
      encrypted(`nbdcrypt on nbd-server file, ${conns} connections`, fileTarget, conns),
    ];
    // The machine is shared and noisy: interleave the rows round by round, keep each one's best.
    for (let r = 0; r < rounds; r++) {
      for (const row of rows) {
        const served = await row.open();
        try {
          const w = await nbdcopyAsync(source, served.uri, { connections: 4, requests: 64, extra: ['--flush'], timeoutMs: 1_800_000 });
          const rd = await nbdcopyAsync(served.uri, 'null:', { connections: 4, requests: 64, timeoutMs: 1_800_000 });
          row.write = Math.max(row.write, size / 1e6 / w);
          row.read = Math.max(row.read, size / 1e6 / rd);
        } finally {
          await served.stop();
        }
      }
    }
    const ref = rows[0]!;
    const lines = [
      `nbdcopy --connections=4 --requests=64, ${values.size} write (--flush) and read to null:, best of ${rounds} interleaved rounds, nbdcrypt reaches its remote ${sshd ? 'over a loopback sshd (ssh://)' : 'directly (nbd://)'}, nbdcopy the unencrypted exports directly; ${new Date().toISOString()}`,
      `exporter: qemu-nbd ${rbdRaw.args.join(' ')}`,
      '',
      '| path | write MB/s | read MB/s | write / read vs qemu-nbd on RBD |',
      '|---|---:|---:|---:|',
      ...rows.map((r) => `| ${r.label} | ${r.write.toFixed(0)} | ${r.read.toFixed(0)} | ${(r.write / ref.write).toFixed(2)} / ${(r.read / ref.read).toFixed(2)} |`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
    dir.remove();
  }
}

await main();
