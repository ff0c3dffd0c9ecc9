/**
 * `nbdcrypt bench e2e [TARGET]`: end-to-end throughput of nbdcrypt next to peers measured in
 * the same run. Without TARGET it builds the whole seed setup on loopback (nbd-server, a
 * private sshd, a LUKS2 volume with a fast KDF), serves it with nbdcrypt over ssh2 and
 * measures it beside the raw nbd-server and beside nbd-server through an OpenSSH -L tunnel.
 * With TARGET (an existing LUKS2 volume and --key-file) it compares nbdcrypt with the same
 * target served without encryption. One load generator for every row: fio's nbd engine.
 * Figures and how to reproduce them: docs/performance.md.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, statfsSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NbdcryptError } from '../../errors.js';
import { DEFAULT_DATA_OFFSET } from '../../luks/luks2-layout.js';
import type { Environment } from '../environment.js';
import { getPassphrase } from '../passphrase.js';
import { createServeRuntime } from '../serve-runtime.js';
import { parseSize } from '../../size.js';
import { checkFio, runFio, standardWorkloads, workloadLabel, type FioRun, type Workload } from './e2e-fio.js';
import { describePinning, parsePinning, pinSelf, type CpuPinning } from './cpu-pinning.js';
import { formatBenchVolume, serveEncrypted, serveRaw, serveSubprocess, type Served } from './e2e-nbdcrypt.js';
import { startNbdServer, startSshd, startTunnel } from './e2e-peers.js';
import { runTool, scratch } from './e2e-procs.js';
import { bestCells, formatTable, Progress, ratiosFor, type Report, type Result, type RowInfo } from './e2e-report.js';
import { SSH2_CONNECTIONS } from '../../backend/remote-target.js';

export const help = `Usage: nbdcrypt bench e2e [TARGET --key-file F] [OPTIONS]

Measure sequential 1 MiB and random 4 KiB reads and writes at queue depths 1, 16 and 64
through nbdcrypt, next to peers measured in the same run, and print a table with ratios.

Without TARGET: starts a private nbd-server and sshd on 127.0.0.1 (generated keys, free
ports), formats a LUKS2 volume on a sparse file (fast KDF), and measures:
  nbdcrypt    'nbdcrypt serve ssh://…?nbd=… --cache 0' (ssh2, --connections; no
              plaintext cache, so reads really cross the link)
  nbd-server  the raw nbd-server, no SSH, no encryption (the ceiling)
  ssh-tunnel  the same nbd-server through 'ssh -N -L' (aes128-gcm, one connection)
The remote side (sshd and its sessions, nbd-server) runs on one CPU and the local side
(nbdcrypt, ssh -L, fio) on another (taskset, package util-linux), so that neither steals the
other's CPU as it would not across a real link; the report says which CPUs each side got.
The volume lives on tmpfs (/dev/shm) when it has room, and sequential workloads move
--transfer bytes each instead of running for --seconds.
With TARGET (a LUKS2 volume nbdcrypt can open, any target kind) it measures nbdcrypt on it
next to 'raw', the same target served without encryption. Reads only, unless
--allow-writes (which overwrites the volume's data).

The load generator for every row is fio with its nbd ioengine (package fio).

Options:
  --key-file F      passphrase file for TARGET (required with TARGET)
  --seconds N       time per measurement (default 2)
  --size SIZE       size of the generated volume (default 1G; no TARGET only)
  --depths LIST     queue depths (default 1,16,64)
  --rounds N        repeat the whole grid N times, keep each cell's best round (default 3
                    without TARGET, 1 with); a short unrecorded pass over the grid
                    comes first, so that no round measures a cold process
  --transfer SIZE   bytes each sequential workload moves (default 1G without TARGET; 0:
                    run for --seconds like the random ones)
  --pin L:R | off   CPUs (taskset lists) of the local and the remote side (default: the
                    first and second CPU this process may use; off on a single CPU)
  --connections N   NBD connections from nbdcrypt to the remote (default 2 over ssh)
  --allow-writes    with TARGET: also run the write workloads (DESTROYS its data)
  --in-process      serve from this process instead of a 'nbdcrypt serve' subprocess
                    (always so with TARGET)
  --json            print the report as JSON on standard output
`;

export interface Row extends RowInfo {
  uri: string;
  region?: { offset: number; size: number };
}

function parse(argv: string[]) {
  let p;
  try {
    p = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        seconds: { type: 'string', default: '2' },
        size: { type: 'string', default: '1G' },
        depths: { type: 'string', default: '1,16,64' },
        rounds: { type: 'string' },
        transfer: { type: 'string' },
        pin: { type: 'string' },
        connections: { type: 'string' },
        'key-file': { type: 'string' },
        'allow-writes': { type: 'boolean', default: false },
        'in-process': { type: 'boolean', default: false },
      },
    });
  } catch (e) {
    throw new NbdcryptError('EUSAGE', `bench e2e: ${(e as Error).message}; see 'nbdcrypt bench e2e --help'`);
  }
  const v = p.values;
  const seconds = Number(v.seconds);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 600) throw new NbdcryptError('EUSAGE', `bench e2e: --seconds '${v.seconds}' must be a whole number from 1 to 600`);
  const depths = v.depths!.split(',').map(Number);
  if (depths.some((d) => !Number.isInteger(d) || d < 1 || d > 1024)) throw new NbdcryptError('EUSAGE', `bench e2e: --depths '${v.depths}' must list whole numbers from 1 to 1024`);
  const connections = v.connections === undefined ? undefined : Number(v.connections);
  if (connections !== undefined && (!Number.isInteger(connections) || connections < 1 || connections > 64)) throw new NbdcryptError('EUSAGE', `bench e2e: --connections '${v.connections}' must be from 1 to 64`);
  if (p.positionals.length > 1) throw new NbdcryptError('EUSAGE', 'bench e2e: at most one TARGET; see --help');
  const target = p.positionals[0];
  const rounds = Number(v.rounds ?? (target === undefined ? 3 : 1));
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new NbdcryptError('EUSAGE', `bench e2e: --rounds '${v.rounds}' must be a whole number from 1 to 20`);
  const transfer = parseSize(v.transfer ?? (target === undefined ? '1G' : '0'), '--transfer');
  // A TARGET's remote side is wherever it is: pinning is asked for explicitly there.
  const pinning = v.pin === undefined && target !== undefined ? undefined : parsePinning(v.pin);
  if (target !== undefined && v['key-file'] === undefined) throw new NbdcryptError('EUSAGE', 'bench e2e: a TARGET needs --key-file with its passphrase');
  const size = parseSize(v.size!, '--size');
  if (size < 64 << 20) throw new NbdcryptError('EUSAGE', 'bench e2e: --size must be at least 64M (the LUKS2 header takes 16M)');
  return { json: v.json!, seconds, size, depths, connections, target, keyFile: v['key-file'], allowWrites: v['allow-writes']!, rounds, inProcess: v['in-process']!, transfer, pinning };
}

export async function run(argv: string[], env: Environment): Promise<number> {
  // First: the file backend and the async cipher run on libuv's pool (serve-runtime.ts);
  // its heap guard is never started, the benchmark measures the data path as it is.
  const runtime = createServeRuntime(env);
  const o = parse(argv);
  const fio = checkFio();
  const fioVersion = runTool(fio, ['--version']).trim();
  // The seed volume and its unencrypted twin live on tmpfs when it has room: the comparison
  // is about the data path, not the remote's disk.
  const dir = scratch('nbdcrypt-bench-e2e-', o.target === undefined ? tmpfsWithRoom(2 * o.size) : undefined);
  const local = o.pinning?.local;
  const remote = o.pinning?.remote;
  const unpin = o.target !== undefined || o.inProcess ? pinSelf(local) : () => undefined;
  const stops: (() => Promise<void>)[] = [];
  const progress = new Progress(0);
  const rows: Row[] = [];
  let served: Served;
  try {
    if (o.target === undefined) {
      const passphrase = randomBytes(32);
      const file = join(dir.path, 'remote.img');
      progress.note(`setting up: LUKS2 volume of ${o.size} bytes, nbd-server, sshd, ssh -L tunnel`);
      await formatBenchVolume(file, o.size, passphrase, env);
      const nbd = await startNbdServer(dir.path, file, 'disk', remote);
      stops.push(nbd.stop);
      // The unencrypted rows get their own file and nbd-server: nbdcrypt flushes the remote when
      // its replay log fills, and that fdatasync must not pay for what other rows left dirty.
      const rawDir = join(dir.path, 'raw');
      mkdirSync(rawDir);
      const rawFile = join(rawDir, 'raw.img');
      writeFileSync(rawFile, '');
      truncateSync(rawFile, o.size);
      const rawNbd = await startNbdServer(rawDir, rawFile, 'disk', remote);
      stops.push(rawNbd.stop);
      const sshd = await startSshd(dir.path, remote);
      stops.push(sshd.stop);
      const tunnel = await startTunnel(sshd, rawNbd.port, undefined, undefined, local);
      stops.push(tunnel.stop);
      const target = `ssh://${sshd.user}@127.0.0.1:${sshd.port}/disk?nbd=127.0.0.1:${nbd.port}`;
      const sshArgs = ['--known-hosts', sshd.knownHosts, '--identity', sshd.userKey, '--cache', '0', ...(o.connections ? ['--connections', String(o.connections)] : [])];
      if (o.inProcess) {
        served = await serveEncrypted(target, passphrase, dir.path, runtime, { sshAgentSocket: env.sshAgentSocket, fileFastPaths: env.fileFastPaths, knownHostsPath: sshd.knownHosts, sshConfigPath: sshd.sshConfig, identity: [sshd.userKey], connections: o.connections });
      } else {
        const keyFile = join(dir.path, 'volume.key');
        writeFileSync(keyFile, passphrase, { mode: 0o600 });
        served = await serveSubprocess(target, keyFile, dir.path, sshArgs, [], local);
      }
      passphrase.fill(0);
      stops.push(served.stop);
      const region = { offset: DEFAULT_DATA_OFFSET, size: o.size - DEFAULT_DATA_OFFSET };
      rows.push(
        { name: 'nbdcrypt', description: `nbdcrypt (${served.engine} XTS) over ssh2 to nbd-server, ${o.connections ?? SSH2_CONNECTIONS} connections`, uri: served.uri },
        { name: 'nbd-server', description: 'nbd-server over TCP, no SSH, no encryption', uri: `nbd://127.0.0.1:${rawNbd.port}/disk`, region },
        { name: 'ssh-tunnel', description: "nbd-server through 'ssh -N -L' (aes128-gcm@openssh.com), no encryption", uri: `nbd://127.0.0.1:${tunnel.port}/disk`, region },
      );
    } else {
      const passphrase = await getPassphrase({ keyFile: o.keyFile, prompt: '' });
      try {
        served = await serveEncrypted(o.target, passphrase, dir.path, runtime, { sshAgentSocket: env.sshAgentSocket, fileFastPaths: env.fileFastPaths, connections: o.connections });
      } finally {
        passphrase.fill(0);
      }
      stops.push(served.stop);
      const raw = await serveRaw(o.target, dir.path, DEFAULT_DATA_OFFSET, runtime, { sshAgentSocket: env.sshAgentSocket, fileFastPaths: env.fileFastPaths, connections: o.connections });
      stops.push(raw.stop);
      rows.push(
        { name: 'nbdcrypt', description: `nbdcrypt (${served.engine} XTS) on ${o.target.replace(/\?.*$/, '')}`, uri: served.uri },
        { name: 'raw', description: 'the same target served by nbdcrypt without encryption', uri: raw.uri, region: { offset: DEFAULT_DATA_OFFSET, size: Math.min(raw.size, served.size) } },
      );
    }
    let workloads = standardWorkloads(o.depths);
    if (o.target !== undefined && !o.allowWrites) workloads = workloads.filter((w) => w.pattern.endsWith('read'));
    const report = await measure(rows, workloads, o.seconds, served.engine, `${fioVersion} ioengine=nbd, one connection per row`, o.rounds, { cpus: local, sequentialBytes: o.transfer || undefined }, o.pinning);
    if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(formatTable(report, workloads, 'nbdcrypt'));
    return 0;
  } finally {
    progress.clear();
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    dir.remove();
    unpin();
  }
}

/** /dev/shm if it exists and has `bytes` free, else undefined (the default temporary directory). */
export function tmpfsWithRoom(bytes: number): string | undefined {
  try {
    const st = statfsSync('/dev/shm');
    return st.bavail * st.bsize >= bytes + (64 << 20) ? '/dev/shm' : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The rows in the order round `round` runs them: each round starts one row further along, so
 * that no row always runs first after a change of workload, or always after the same neighbour.
 */
export function rowsInRound<T>(rows: readonly T[], round: number): T[] {
  const k = rows.length === 0 ? 0 : round % rows.length;
  return rows.slice(k).concat(rows.slice(0, k));
}

/** The most a warm-up cell moves or lasts: enough to start every process's steady state. */
const WARM_UP_BYTES = 64 * 1024 * 1024;
const WARM_UP_SECONDS = 1;

/**
 * Runs every workload on every row, interleaved so that machine noise hits all rows alike
 * (the rows' order rotates from round to round); with rounds > 1 the whole grid is repeated
 * and each cell keeps its best round (the one least disturbed by other load on a shared
 * machine), for every row the same way. A short unrecorded pass over the grid comes first, so
 * that no round measures a cold process: code the JIT has not compiled yet, empty buffer
 * pools, TCP and SSH windows still small (docs/performance.md, How to read these figures).
 */
export async function measure(rows: Row[], workloads: Workload[], seconds: number, cipherEngine: string, loadGenerator: string, rounds = 1, how: FioRun = {}, pinning?: CpuPinning): Promise<Report> {
  const startedAt = new Date().toISOString();
  const progress = new Progress(rows.length * workloads.length * (rounds + 1));
  const roundResults: Result[][] = [];
  let step = 0;
  try {
    const warmUp: FioRun = { ...how, ...(how.sequentialBytes ? { sequentialBytes: Math.min(how.sequentialBytes, WARM_UP_BYTES) } : {}) };
    for (const w of workloads) {
      for (const row of rows) {
        progress.step(step++, `${row.name}: ${workloadLabel(w)} (warm-up)`);
        await runFio(row.uri, w, Math.min(seconds, WARM_UP_SECONDS), row.region, warmUp);
      }
    }
    for (let round = 0; round < rounds; round++) {
      const cells: Result[] = [];
      roundResults.push(cells);
      const order = rowsInRound(rows, round);
      for (const w of workloads) {
        for (const row of order) {
          progress.step(step++, `${row.name}: ${workloadLabel(w)}${rounds > 1 ? ` (round ${round + 1}/${rounds})` : ''}`);
          cells.push({ row: row.name, pattern: w.pattern, blockSize: w.blockSize, queueDepth: w.queueDepth, ...(await runFio(row.uri, w, seconds, row.region, how)) });
        }
      }
    }
  } finally {
    progress.clear();
  }
  const results = bestCells(roundResults);
  return {
    startedAt,
    finishedAt: new Date().toISOString(),
    loadGenerator,
    seconds,
    rounds,
    ...(how.sequentialBytes ? { sequentialBytes: how.sequentialBytes } : {}),
    cpus: describePinning(pinning),
    cipherEngine,
    rows: rows.map(({ name, description }) => ({ name, description })),
    results,
    roundResults,
    ratios: ratiosFor(results, rows[0]!.name, workloads),
  };
}
