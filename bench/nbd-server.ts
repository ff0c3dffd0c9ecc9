/**
 * Throughput of the plain NBD front end (`nbdcrypt serve --unencrypted`) next to the reference
 * servers, in one run on the same machine: memory backend vs `nbdkit memory`, file backend vs
 * `nbd-server` and `nbdkit file` on the same sparse file. Every server is driven by the same
 * client, fio's nbd ioengine (libnbd, one connection, requests in flight = iodepth), over a
 * unix socket, so the only thing that differs is the server. fio rather than nbdcopy because
 * it does random 4 KiB I/O and reports IOPS; all servers are separate processes, as in use.
 * Run: node dist/bench/nbd-server.js [--seconds N] [--rounds N] [--size 1G] [--iodepth N]
 */
import { benchArgs } from './bench-args.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startNbdcrypt, type NbdcryptProc } from '../peers/nbdcrypt.js';
import { startNbdServer } from '../peers/nbd-server.js';
import { requireTool, run, scratchDir, startProcess, waitFor, type Proc } from '../peers/tools.js';
import { parseSize } from '../src/size.js';

interface Workload {
  name: string;
  rw: 'read' | 'write' | 'randread' | 'randwrite';
  bs: string;
}

// Writes first, so the reads that follow read data that exists on every server.
const workloads: Workload[] = [
  { name: 'seq write 1M', rw: 'write', bs: '1m' },
  { name: 'seq read 1M', rw: 'read', bs: '1m' },
  { name: 'rand write 4K', rw: 'randwrite', bs: '4k' },
  { name: 'rand read 4K', rw: 'randread', bs: '4k' },
];

interface Result {
  mbps: number;
  iops: number;
}

interface Server {
  label: string;
  uri: string;
  stop: () => Promise<void>;
}

function fio(uri: string, w: Workload, seconds: number, size: number, iodepth: number): Result {
  const bin = requireTool('fio', 'fio');
  const r = run(
    bin,
    [
      '--name=bench',
      '--ioengine=nbd',
      `--uri=${uri}`,
      `--rw=${w.rw}`,
      `--bs=${w.bs}`,
      `--iodepth=${iodepth}`,
      `--size=${size}`,
      '--time_based',
      `--runtime=${seconds}`,
      '--ramp_time=1',
      '--randrepeat=1',
      '--output-format=json',
    ],
    { timeoutMs: (seconds + 60) * 1000 },
  );
  const job = (JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { jobs: { read: { bw_bytes: number; iops: number }; write: { bw_bytes: number; iops: number } }[] }).jobs[0]!;
  const side = w.rw.includes('write') ? job.write : job.read;
  return { mbps: side.bw_bytes / 1e6, iops: side.iops };
}

async function nbdkit(dir: string, label: string, args: string[]): Promise<Server> {
  const bin = requireTool('nbdkit', 'nbdkit');
  const sock = join(dir, `${label.replace(/\W+/g, "-")}.sock`);
  const proc: Proc = startProcess(bin, ['-f', '-U', sock, ...args]);
  await waitFor(`${label} socket`, () => {
    if (proc.child.exitCode !== null) throw new Error(`${label} exited: ${proc.stderr()}`);
    return existsSync(sock);
  }, 10_000);
  return { label, uri: `nbd+unix:///?socket=${sock}`, stop: () => proc.stop() };
}

async function ours(dir: string, label: string, target: string): Promise<Server> {
  const p: NbdcryptProc = await startNbdcrypt(['serve', '--unencrypted', target, '--listen', `unix:${join(dir, `${label.replace(/\W+/g, "-")}.sock`)}`]);
  return { label, uri: p.uri(), stop: async () => void (await p.stop()) };
}

const fmt = (n: number, d = 0) => n.toFixed(d).padStart(8);

async function main(): Promise<void> {
  const values = benchArgs('Usage: node dist/bench/nbd-server.js [--seconds N] [--rounds N] [--size 1G] [--iodepth N]\n  serve --unencrypted next to nbd-server and nbdkit, driven by fio over a unix socket.', {
    seconds: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    size: { type: 'string', default: '1G' },
    iodepth: { type: 'string', default: '16' },
  });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const size = parseSize(values.size!, '--size');
  const iodepth = Number(values.iodepth);
  const dir = scratchDir('nbdcrypt-bench-');
  // nbd-server creates the sparse file that every file-backed server serves (one at a time).
  const nbdServer = await startNbdServer({ size, unixSocket: true });
  const file = nbdServer.file;
  const servers: Server[] = [];
  try {
    servers.push(await ours(dir.path, 'nbdcrypt memory', `memory:${size}`));
    servers.push(await nbdkit(dir.path, 'nbdkit memory', ['memory', String(size)]));
    servers.push(await ours(dir.path, 'nbdcrypt file', `file:${file}`));
    servers.push({ label: 'nbd-server file', uri: `nbd+unix:///disk?socket=${nbdServer.socketPath}`, stop: async () => undefined });
    servers.push(await nbdkit(dir.path, 'nbdkit file', ['file', file]));
    // The machine is shared and noisy: interleave the servers round by round and keep each
    // one's best round, so a burst of load elsewhere does not decide a ratio.
    const best = servers.map(() => workloads.map((): Result => ({ mbps: 0, iops: 0 })));
    for (let r = 0; r < rounds; r++) {
      workloads.forEach((w, wi) =>
        servers.forEach((s, si) => {
          const res = fio(s.uri, w, seconds, size, iodepth);
          if (res.mbps > best[si]![wi]!.mbps) best[si]![wi] = res;
        }),
      );
    }
    const lines = [
      `fio nbd ioengine (libnbd), 1 connection, iodepth ${iodepth}, best of ${rounds} interleaved rounds of ${seconds} s, ${values.size} export, unix sockets; ${new Date().toISOString()}`,
      '',
      '| workload | backend | server | MB/s | IOPS | ratio |',
      '|---|---|---|---:|---:|---:|',
    ];
    const ref: Record<number, [number, string]> = { 0: [1, 'nbdkit memory'], 2: [3, 'nbd-server'], 4: [3, 'nbd-server'] };
    workloads.forEach((w, wi) => {
      servers.forEach((s, si) => {
        const r = best[si]![wi]!;
        const rf = ref[si];
        const ratio = rf ? `${(r.mbps / best[rf[0]]![wi]!.mbps).toFixed(2)} vs ${rf[1]}` : '(reference)';
        lines.push(`| ${w.name} | ${si < 2 ? 'memory' : 'file'} | ${s.label} | ${fmt(r.mbps, 1)} | ${fmt(r.iops)} | ${ratio} |`);
      });
    });
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    for (const s of servers) await s.stop();
    await nbdServer.stop();
    dir.remove();
  }
}

await main();
