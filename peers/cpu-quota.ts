/**
 * A CPU quota for the remote side of a benchmark: the processes moved into it (and every child
 * they fork afterwards: sshd's sessions, nbd-server's per-connection forks) may use together
 * at most `percent` of one CPU, enforced by the kernel's CFS bandwidth control. It plays the
 * remote a backup usually goes to (a NAS, a small VPS), whose CPU, not the client's, limits the
 * link. Uses cgroup v2 (`cpu.max`) where /sys/fs/cgroup is the unified hierarchy, else the
 * cgroup v1 `cpu` controller (`cpu.cfs_quota_us`); needs root.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NbdcryptError } from '../src/errors.js';

/** Short periods spread the quota evenly (a slow CPU), instead of long runs and long stops. */
const PERIOD_US = 10_000;

export interface CpuQuota {
  /** "at most N % of one CPU (cgroup v1 cpu controller)", for the report. */
  readonly description: string;
  /** The group's directory; gone after remove(). */
  readonly path: string;
  /** Moves `pid` into the quota; its later children follow. */
  add(pid: number): void;
  /** Moves what is left back to the root group and removes the group. */
  remove(): void;
}

function hierarchy(): { dir: string; version: 1 | 2 } {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return { dir: '/sys/fs/cgroup', version: 2 };
  if (existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')) return { dir: '/sys/fs/cgroup/cpu', version: 1 };
  throw new NbdcryptError('EUSAGE', 'bench: --remote-cpu-percent needs the cgroup cpu controller (cgroup v2 at /sys/fs/cgroup or v1 at /sys/fs/cgroup/cpu)');
}

/** A new group limited to `percent` of one CPU (1-100). */
export function createCpuQuota(percent: number): CpuQuota {
  if (!Number.isFinite(percent) || percent < 1 || percent > 100) {
    throw new NbdcryptError('EUSAGE', `bench: --remote-cpu-percent ${percent} must be between 1 and 100`);
  }
  const { dir: root, version } = hierarchy();
  const dir = join(root, `nbdcrypt-bench-${process.pid}`);
  const quotaUs = Math.round((PERIOD_US * percent) / 100);
  try {
    mkdirSync(dir);
    if (version === 2) {
      // The cpu controller must be on for the root's children (a no-op if it already is).
      writeFileSync(join(root, 'cgroup.subtree_control'), '+cpu');
      writeFileSync(join(dir, 'cpu.max'), `${quotaUs} ${PERIOD_US}`);
    } else {
      writeFileSync(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
      writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
    }
  } catch (e) {
    throw new NbdcryptError('EUSAGE', `bench: cannot set up a CPU quota in ${dir} (${(e as Error).message}); run as root`, { cause: e });
  }
  return {
    description: `at most ${percent} % of one CPU (cgroup v${version} cpu controller)`,
    path: dir,
    add: (pid) => writeFileSync(join(dir, 'cgroup.procs'), String(pid)),
    remove: () => {
      if (!existsSync(dir)) return;
      const left = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
      for (const pid of left) {
        try {
          writeFileSync(join(root, 'cgroup.procs'), pid);
        } catch {
          // Exited meanwhile.
        }
      }
      rmdirSync(dir);
    },
  };
}
