/**
 * Starts `node bin/nbdcrypt.js ARGV...` (any argv: `serve --unencrypted ...`, encrypted serve,
 * demo) as a subprocess, waits for its `nbdcrypt: listening on ADDRESS` line(s) and returns
 * the addresses, NBD URIs for libnbd/qemu and a stop function (SIGTERM by PID, then SIGKILL).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { startProcess, waitFor, type Proc } from './tools.js';

/** Repository root: the nearest directory above this file holding package.json. */
export const repoRoot = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (dir !== '/' && !existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
})();

export const nbdcryptBin = join(repoRoot, 'bin', 'nbdcrypt.js');

export interface NbdcryptProc {
  proc: Proc;
  /** Every address printed, in order ("unix:/path" or "tcp:127.0.0.1:PORT"). */
  addresses: string[];
  /** The first address. */
  address: string;
  /** NBD URI of export `name` (default 'disk') on the first address. */
  uri(name?: string): string;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** 'unix:/p' → nbd+unix:///NAME?socket=/p; 'tcp:H:P' → nbd://H:P/NAME. */
export function nbdUri(address: string, name = 'disk'): string {
  if (address.startsWith('unix:')) return `nbd+unix:///${name}?socket=${address.slice(5)}`;
  if (address.startsWith('tcp:')) return `nbd://${address.slice(4)}/${name}`;
  throw new Error(`not an nbdcrypt address: ${address}`);
}

export async function startNbdcrypt(
  argv: string[],
  opts: { listeners?: number; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<NbdcryptProc> {
  const proc = startProcess(process.execPath, [nbdcryptBin, ...argv], { env: opts.env ?? process.env });
  const want = opts.listeners ?? 1;
  const addresses = (): string[] => [...proc.stdout().matchAll(/^nbdcrypt: listening on (.+)$/gm)].map((m) => m[1]!);
  let exited = false;
  void proc.exited.then(() => (exited = true));
  try {
    await waitFor(`nbdcrypt ${argv.join(' ')} to listen`, () => {
      if (exited) throw new Error(`nbdcrypt exited before listening: ${proc.stderr().trim()}`);
      return addresses().length >= want;
    }, opts.timeoutMs ?? 30_000);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  const list = addresses();
  return {
    proc,
    addresses: list,
    address: list[0]!,
    uri: (name = 'disk') => nbdUri(list[0]!, name),
    stop: async () => {
      await proc.stop();
      return proc.exited;
    },
  };
}
