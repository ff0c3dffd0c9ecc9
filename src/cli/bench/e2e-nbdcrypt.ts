/**
 * The nbdcrypt side of `nbdcrypt bench e2e`: formats a LUKS2 volume with a fast KDF (the
 * benchmark measures the data path, not the keyslot), and serves a TARGET in this process
 * exactly as `nbdcrypt serve` stacks it: target (file or remote NBD client) → EncryptedDevice
 * → NBD server on a private unix socket. `serveRaw` serves the same target without the
 * encryption layer, the baseline that shows what the cipher costs.
 * Layers: docs/ARCHITECTURE.md; format: docs/formats.md (LUKS2).
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BlockDevice } from '../../block/block-device.js';
import { FileDevice } from '../../block/file-device.js';
import { EncryptedDevice } from '../../crypt/encrypted-device.js';
import { formatVolume } from '../../luks/format-volume.js';
import { openVolume } from '../../luks/open-volume.js';
import { NbdServer } from '../../nbd/server.js';
import { openTarget, type TargetOptions } from '../../backend/open-target.js';
import type { Environment } from '../environment.js';
import { withRuntime, type ServeRuntime } from '../serve-runtime.js';
import { pinnedCommand } from './cpu-pinning.js';
import { waitUntil } from './e2e-procs.js';

export interface Served {
  /** NBD URI of the served export (nbd+unix). */
  uri: string;
  /** Plaintext size served (0 when not known here: the subprocess serve). */
  size: number;
  /** Where the data area starts in the lower device (0 for raw). */
  dataOffset: number;
  /** Cipher engine in use ('none' for raw). */
  engine: string;
  stop(): Promise<void>;
}

/** Creates `file` as a sparse file of `size` bytes and formats it LUKS2 (sector 4096, pbkdf2 1000 iterations). */
export async function formatBenchVolume(file: string, size: number, passphrase: Buffer, env: Environment): Promise<void> {
  const dev = await FileDevice.open(file, { createSize: size, fastPaths: env.fileFastPaths });
  try {
    const vol = await formatVolume(dev, passphrase, { sectorSize: 4096, pbkdf: 'pbkdf2', pbkdfForceIterations: 1000, force: true, engines: env.engines });
    vol.volumeKey.fill(0);
    await dev.flush();
  } finally {
    await dev.close();
  }
}

async function serveDevice(device: BlockDevice, dir: string, sock: string, runtime: ServeRuntime): Promise<{ uri: string; server: NbdServer }> {
  const server = new NbdServer({ exports: [{ name: 'disk', device }], io: runtime.io });
  const path = join(dir, sock);
  await server.listen(`unix:${path}`);
  return { uri: `nbd+unix:///disk?socket=${path}`, server };
}

async function closeAll(server: NbdServer, device: BlockDevice): Promise<void> {
  await server.close(5000);
  await device.flush().catch(() => undefined);
  await device.close();
}

/** Opens the LUKS2 volume on `target` and serves its plaintext on a unix socket in `dir`. */
export async function serveEncrypted(target: string, passphrase: Buffer, dir: string, runtime: ServeRuntime, opts: TargetOptions = {}): Promise<Served> {
  const lower = await openTarget(target, withRuntime(opts, runtime));
  const { engines } = runtime.env;
  let device: EncryptedDevice;
  try {
    const vol = await openVolume(lower, passphrase, { engines });
    try {
      device = new EncryptedDevice(lower, { key: vol.volumeKey, dataOffset: vol.dataOffset, sectorSize: vol.sectorSize, ivTweak: vol.ivTweak, engine: engines.xts, buffers: runtime.io.buffers });
    } finally {
      vol.volumeKey.fill(0);
    }
  } catch (e) {
    await lower.close();
    throw e;
  }
  const { uri, server } = await serveDevice(device, dir, 'nbdcrypt.sock', runtime);
  return { uri, size: device.size, dataOffset: 0, engine: device.engine, stop: () => closeAll(server, device) };
}

/** Serves `target`'s raw bytes (ciphertext, header included) on a unix socket in `dir`. */
export async function serveRaw(target: string, dir: string, dataOffset: number, runtime: ServeRuntime, opts: TargetOptions = {}): Promise<Served> {
  const device = await openTarget(target, withRuntime(opts, runtime));
  const { uri, server } = await serveDevice(device, dir, 'raw.sock', runtime);
  return { uri, size: device.size - dataOffset, dataOffset, engine: 'none', stop: () => closeAll(server, device) };
}

/** bin/nbdcrypt.js of this installation (dist/src/cli/bench → repository root). */
const nbdcryptBin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'bin', 'nbdcrypt.js');

let serveCount = 0;

/**
 * Runs `nbdcrypt serve TARGET --key-file F --listen unix:dir/serve.sock ARGS` as its own
 * process (what a user runs) and resolves once it prints its listening line. `nodeArgs`
 * lets a caller profile it (e.g. --cpu-prof); `cpus` pins it (and its ssh+cmd children);
 * `env`, when given, is its whole environment instead of this process' own.
 */
export async function serveSubprocess(target: string, keyFile: string, dir: string, args: string[] = [], nodeArgs: string[] = [], cpus?: string, env?: NodeJS.ProcessEnv): Promise<Served> {
  const sock = join(dir, `serve-${Date.now()}-${serveCount++}.sock`);
  const child = spawn(...pinnedCommand(cpus, process.execPath, [...nodeArgs, nbdcryptBin, 'serve', target, '--key-file', keyFile, '--listen', `unix:${sock}`, ...args]), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-8192)));
  let exited = false;
  const gone = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await gone;
    clearTimeout(t);
  };
  try {
    await waitUntil('nbdcrypt serve to listen', () => {
      if (exited) throw new Error(`nbdcrypt serve exited: ${err.trim()}`);
      return /^nbdcrypt: listening on unix:/m.test(out);
    }, 60_000);
  } catch (e) {
    await stop();
    throw e;
  }
  // The volume line goes to stderr just before the listening line to stdout; allow the pipes to race.
  await waitUntil('the cipher engine line', () => /engine\)/.test(err), 2000).catch(() => undefined);
  // serve logs e.g. "... aes-xts-plain64 (native engine)" once the volume is open.
  const engine = /\((native|node|reference) engine\)/.exec(err)?.[1] ?? 'unknown';
  return { uri: `nbd+unix:///disk?socket=${sock}`, size: 0, dataOffset: 0, engine, stop };
}
