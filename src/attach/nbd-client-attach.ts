/**
 * `serve --attach /dev/nbdX`: run the kernel's `nbd-client` against our own listener so the
 * user gets a block device in one command, and detach it (`nbd-client -d`) before the server
 * stops. Needs root, nbd-client (Debian package nbd-client) and the nbd kernel module; each
 * missing piece is reported in one line with what to do instead (nbdfuse needs neither).
 * `-t 0` because nbdcrypt rides out remote outages itself (reconnect and replay), so the
 * kernel must never time a request out (docs/ARCHITECTURE.md, Durability and replay).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';

/** Finds a program on the search path the command was started with (cli owns the environment). */
export type ToolFinder = (name: string) => string | undefined;

export interface Attached {
  device: string;
  detach(): Promise<void>;
}

/** True when the nbd module is loaded, or loads now (modprobe nbd). */
export function nbdModuleAvailable(findExecutable: ToolFinder): boolean {
  if (existsSync('/sys/module/nbd')) return true;
  const modprobe = findExecutable('modprobe');
  if (!modprobe) return false;
  const r = spawnSync(modprobe, ['nbd'], { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0 && existsSync('/sys/module/nbd');
}

/** Fails early, before the passphrase is asked, when --attach cannot work here. */
export function checkAttachPossible(device: string, findExecutable: ToolFinder): void {
  if (!findExecutable('nbd-client')) {
    throw new NbdcryptError('EUSAGE', `--attach ${device}: nbd-client is not installed (apt-get install nbd-client); serve without --attach and use nbdfuse instead`);
  }
  if (!nbdModuleAvailable(findExecutable)) {
    throw new NbdcryptError('EUSAGE', `--attach ${device}: the nbd kernel module is not available (/sys/module/nbd absent and 'modprobe nbd' failed); serve without --attach and use nbdfuse + losetup (see README)`);
  }
  if (!existsSync(device)) throw new NbdcryptError('EUSAGE', `--attach ${device}: no such device; try /dev/nbd0 (modprobe nbd nbds_max=16 makes more)`);
}

/** Runs a command without blocking the event loop (nbd-client talks to this very process). */
function runAsync(cmd: string, args: string[], timeoutMs: number): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: timeoutMs });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => resolve({ status: null, stderr: e.message }));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

/** Attaches `device` to our listener `address` (unix:PATH or tcp:HOST:PORT). */
export async function attachNbd(device: string, address: string, name: string, blockSize: number, findExecutable: ToolFinder): Promise<Attached> {
  const nbdClient = findExecutable('nbd-client')!;
  let where: string[];
  if (address.startsWith('unix:')) where = ['-unix', address.slice(5)];
  else {
    const m = /^tcp:\[?([^\]]+?)\]?:(\d+)$/.exec(address)!;
    where = [m[1]!, m[2]!];
  }
  const args = [...where, '-N', name, '-b', String(blockSize), '-t', '0', device];
  const r = await runAsync(nbdClient, args, 60_000);
  if (r.status !== 0) {
    throw new NbdcryptError('EIO', `--attach: nbd-client ${args.join(' ')} failed: ${r.stderr.trim()}`);
  }
  log.info(`attached ${device} (nbd-client ${args.join(' ')}); it is detached when nbdcrypt stops`);
  return {
    device,
    detach: async () => {
      const d = await runAsync(nbdClient, ['-d', device], 120_000);
      if (d.status !== 0) log.warn(`could not detach ${device}: ${d.stderr.trim()}; run 'nbd-client -d ${device}'`);
      else log.info(`detached ${device}`);
    },
  };
}
