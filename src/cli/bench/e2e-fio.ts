/**
 * The one load generator of `nbdcrypt bench e2e` and bench/e2e-compare: fio with its `nbd`
 * ioengine (libnbd, one NBD connection per job, `iodepth` requests in flight), the same for
 * every row so the comparison is fair. One call runs one workload for a fixed time against
 * an NBD URI and returns bytes moved, MB/s and IOPS from fio's JSON report.
 * fio's nbd engine: fio(1), ioengine=nbd.
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NbdcryptError } from '../../errors.js';
import { pinnedCommand } from './cpu-pinning.js';
import { findTool, runTool, runToolAsync } from './e2e-procs.js';

export type Pattern = 'seq-read' | 'seq-write' | 'rand-read' | 'rand-write' | 'rand-rw';

export interface Workload {
  pattern: Pattern;
  /** Bytes per request: 1 MiB sequential, 4 KiB random. */
  blockSize: number;
  queueDepth: number;
}

export interface FioResult {
  /** Bytes moved in both directions during the timed part. */
  bytes: number;
  mbps: number;
  iops: number;
  seconds: number;
}

const fioRw: Record<Pattern, string> = { 'seq-read': 'read', 'seq-write': 'write', 'rand-read': 'randread', 'rand-write': 'randwrite', 'rand-rw': 'randrw' };

/** The standard grid: sequential 1 MiB and random 4 KiB, read and write, at QD 1, 16 and 64. */
export function standardWorkloads(depths: number[] = [1, 16, 64]): Workload[] {
  const out: Workload[] = [];
  for (const pattern of ['seq-read', 'seq-write', 'rand-read', 'rand-write'] as const) {
    for (const queueDepth of depths) out.push({ pattern, blockSize: pattern.startsWith('seq') ? 1 << 20 : 4096, queueDepth });
  }
  return out;
}

export function workloadLabel(w: Workload): string {
  const bs = w.blockSize >= 1 << 20 ? `${w.blockSize >> 20}M` : `${w.blockSize >> 10}K`;
  return `${w.pattern} ${bs} QD${w.queueDepth}`;
}

/** Fails early, with the package to install, when fio or its nbd engine is missing. */
export function checkFio(): string {
  const fio = findTool('fio', 'fio');
  const engines = runTool(fio, ['--enghelp'], 15_000);
  if (!/^\s*nbd\s*$/m.test(engines)) throw new NbdcryptError('EUSAGE', `bench: this fio (${fio}) was built without the nbd ioengine; install Debian's fio package (3.33 has it)`);
  return fio;
}

interface FioJson {
  jobs: { error: number; read: FioDir; write: FioDir }[];
}
interface FioDir {
  io_bytes: number;
  bw_bytes: number;
  iops: number;
  runtime: number;
}

let serial = 0;

export interface FioRun {
  /** taskset CPU list fio runs on. */
  cpus?: string;
  /**
   * Sequential workloads move this many bytes (wrapping around a smaller device) instead of
   * running for `seconds`; random ones stay timed.
   */
  sequentialBytes?: number;
}

/**
 * Runs `w` for `seconds` against `uri` (an NBD URI, or the path of a block device). `region` limits the byte range used (offset, size),
 * e.g. to keep raw writes off a LUKS header.
 */
export async function runFio(uri: string, w: Workload, seconds: number, region?: { offset: number; size: number }, how: FioRun = {}): Promise<FioResult> {
  const fio = checkFioCached();
  const out = join(tmpdir(), `nbdcrypt-fio-${process.pid}-${serial++}.json`);
  const args = [
    '--name=e2e',
    // A path is a local block device (e.g. a loop device on an sshfs mount): libaio, O_DIRECT.
    ...(uri.startsWith('/') ? ['--ioengine=libaio', '--direct=1', `--filename=${uri}`] : ['--ioengine=nbd', `--uri=${uri}`]),
    `--rw=${fioRw[w.pattern]}`,
    `--bs=${w.blockSize}`,
    `--iodepth=${w.queueDepth}`,
    ...(how.sequentialBytes && w.pattern.startsWith('seq') ? [`--io_size=${how.sequentialBytes}`] : [`--runtime=${seconds}`, '--time_based']),
    '--randrepeat=0',
    '--norandommap',
    '--output-format=json',
    `--output=${out}`,
    ...(region ? [`--offset=${region.offset}`, `--size=${region.size}`] : []),
  ];
  try {
    const limitMs = how.sequentialBytes && w.pattern.startsWith('seq') ? 600_000 : (seconds + 60) * 1000;
    await runToolAsync(...pinnedCommand(how.cpus, fio, args), limitMs);
    const j = JSON.parse(readFileSync(out, 'utf8')) as FioJson;
    const job = j.jobs[0];
    if (!job || job.error !== 0) throw new NbdcryptError('EIO', `bench: fio ${workloadLabel(w)} on ${uri} reported error ${job?.error}`);
    const bytes = job.read.io_bytes + job.write.io_bytes;
    const ms = Math.max(job.read.runtime, job.write.runtime, 1);
    return { bytes, seconds: ms / 1000, mbps: (job.read.bw_bytes + job.write.bw_bytes) / 1e6, iops: job.read.iops + job.write.iops };
  } finally {
    rmSync(out, { force: true });
  }
}

let fioPath: string | undefined;
function checkFioCached(): string {
  return (fioPath ??= checkFio());
}
