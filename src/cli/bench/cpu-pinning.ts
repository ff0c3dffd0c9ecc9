/**
 * Where the benchmarks' processes run. Over SSH on one machine, the remote side (sshd, its
 * per-connection children, nbd-server and its children) and the local side (nbdcrypt, ssh -L,
 * an ssh2 client, nbdcopy, fio) would otherwise compete for the same cores, and the peer
 * that spawns fewer busy processes wins for reasons that have nothing to do with its code. So
 * by default each side gets its own CPUs through `taskset -c` (util-linux), applied when a
 * process is spawned: its children (sshd's sessions, nbd-server's forks) inherit the mask.
 * Figures and method: docs/performance.md (How to read these figures).
 */
import { readFileSync } from 'node:fs';
import { NbdcryptError } from '../../errors.js';
import { findTool, runTool } from './e2e-procs.js';

export interface CpuPinning {
  /** taskset CPU list of the local side (nbdcrypt, ssh clients, the load generator). */
  local: string;
  /** taskset CPU list of the remote side (sshd and its sessions, nbd-server). */
  remote: string;
}

/** The CPUs this process may run on (its affinity mask), in order. */
export function allowedCpus(status = readFileSync('/proc/self/status', 'utf8')): number[] {
  const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1];
  if (!list) return [];
  const out: number[] = [];
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a!; c <= (b ?? a!); c++) out.push(c);
  }
  return out;
}

const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;

/**
 * The pinning asked for by `--pin`: 'off' (none), 'LOCAL:REMOTE' (taskset CPU lists), or
 * nothing: the first allowed CPU for the local side and the second for the remote side, when
 * there are two or more; none on a single CPU.
 */
export function parsePinning(value: string | undefined, cpus = allowedCpus()): CpuPinning | undefined {
  if (value === 'off') return undefined;
  if (value === undefined) return cpus.length >= 2 ? { local: String(cpus[0]), remote: String(cpus[1]) } : undefined;
  const [local, remote, ...rest] = value.split(':');
  if (rest.length || !local || !remote || !CPU_LIST.test(local) || !CPU_LIST.test(remote)) {
    throw new NbdcryptError('EUSAGE', `bench: --pin '${value}' must be 'off' or LOCAL:REMOTE CPU lists such as 0:1 or 0-1:2-3`);
  }
  return { local, remote };
}

/** One line for the report: which CPUs each side got. */
export function describePinning(p: CpuPinning | undefined): string {
  if (!p) return 'not pinned: local and remote processes share every CPU';
  return `remote side (sshd and its sessions, nbd-server) on CPU ${p.remote}; local side (nbdcrypt, ssh clients, load generator) on CPU ${p.local}`;
}

/** `cmd args` run on `cpus` (a taskset CPU list), or unchanged without one. */
export function pinnedCommand(cpus: string | undefined, cmd: string, args: string[]): [string, string[]] {
  if (cpus === undefined) return [cmd, args];
  return [findTool('taskset', 'util-linux'), ['-c', cpus, cmd, ...args]];
}

/**
 * Moves this process (every thread) to `cpus` and returns what puts it back: for the parts of
 * a benchmark that run in-process on the local side.
 */
export function pinSelf(cpus: string | undefined): () => void {
  if (cpus === undefined) return () => undefined;
  const taskset = findTool('taskset', 'util-linux');
  const before = allowedCpus().join(',');
  runTool(taskset, ['-a', '-p', '-c', cpus, String(process.pid)]);
  return () => void runTool(taskset, ['-a', '-p', '-c', before, String(process.pid)]);
}
