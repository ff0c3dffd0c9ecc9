/**
 * What /sys says about nbd devices: which exist, the backend identifier a device was bound
 * with (the `backend` file exists only while a netlink configuration with an identifier is
 * live) and its size. (Its `pid` file names the process that first connected it, even after
 * a reattach, so liveness is recorded by serve itself: server-record.ts.) Read-only; every value is
 * optional because a device can be torn down between two reads.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { NbdcryptError } from '../errors.js';

export const SYS_BLOCK = '/sys/block';

export interface DeviceFacts {
  index: number;
  device: string;
  backend?: string;
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
  const sectors = Number(readTrimmed(`${dir}/size`) ?? NaN);
  return {
    index,
    device: `/dev/nbd${index}`,
    backend: backend || undefined,
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
