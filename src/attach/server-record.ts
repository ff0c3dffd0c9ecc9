/**
 * Which process serves a netlink-attached device right now. The kernel's own
 * /sys/block/nbdN/pid names the process that first connected the device and is not updated by
 * a reattach, so it cannot tell a live server from a dead one. serve records its pid in
 * /run/nbdcrypt/nbdN.pid once the kernel holds its sockets and removes the record when it
 * detaches or hands over; a record left by a killed serve names a process that is gone.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const RECORD_DIR = '/run/nbdcrypt';

const recordPath = (index: number, dir: string): string => join(dir, `nbd${index}.pid`);

export function recordServer(index: number, dir = RECORD_DIR): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(recordPath(index, dir), `${process.pid}\n`, { mode: 0o600 });
}

export function forgetServer(index: number, dir = RECORD_DIR): void {
  try {
    if (Number(readFileSync(recordPath(index, dir), 'utf8')) === process.pid) rmSync(recordPath(index, dir));
  } catch {
    // no record
  }
}

/** The pid of the live process serving nbdN, or undefined when none is recorded or it is gone. */
export function liveServer(index: number, dir = RECORD_DIR): number | undefined {
  try {
    const pid = Number(readFileSync(recordPath(index, dir), 'utf8'));
    return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
