/**
 * What /sys says about nbd devices: which exist, the backend identifier a device was bound
 * with (the `backend` file exists only while a netlink configuration with an identifier is
 * live), the pid of the process that configured it, and its size. Read-only; every value is
 * optional because a device can be torn down between two reads.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { NbdcryptError } from '../errors.js';

export const SYS_BLOCK = '/sys/block';

export interface DeviceFacts {
  index: number;
  device: string;
  backend?: string;
  pid?: number;
  sizeBytes?: number;
}

/** `/dev/nbd3` or `nbd3` → 3; anything else is a usage error. */
export function nbdIndexOf(device: string): number {
  const m = /^(?:\/dev\/)?nbd(\d{1,4})$/.exec(device);
  if (!m) throw new NbdcryptError('EUSAGE', `'${device}' is not an nbd device; name one like /dev/nbd0, or use 'auto'`);
  return Number(m[1]);
}

function readTrimmed(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function deviceFacts(index: number, root = SYS_BLOCK): DeviceFacts {
  const dir = `${root}/nbd${index}`;
  const backend = readTrimmed(`${dir}/backend`);
  const pid = Number(readTrimmed(`${dir}/pid`) ?? NaN);
  const sectors = Number(readTrimmed(`${dir}/size`) ?? NaN);
  return {
    index,
    device: `/dev/nbd${index}`,
    backend: backend || undefined,
    pid: Number.isInteger(pid) && pid > 0 ? pid : undefined,
    sizeBytes: Number.isFinite(sectors) ? sectors * 512 : undefined,
  };
}

/** Indexes of every nbd device the kernel has made (nbds_max of the module). */
export function nbdIndexes(root = SYS_BLOCK): number[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .flatMap((name) => {
      const m = /^nbd(\d+)$/.exec(name);
      return m ? [Number(m[1])] : [];
    })
    .sort((a, b) => a - b);
}

/** True while `pid` names a running process (the pid file outlives a killed server). */
export function processAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
