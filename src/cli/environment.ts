/**
 * The one module of nbdcrypt that touches `process.env`. `readEnvironment` turns the
 * environment switches into a typed `Environment` once, at start-up (main.ts), and the
 * commands hand its fields down as plain options: the cipher engine to the crypt and LUKS
 * layers, the file shortcuts to the file device, the agent socket to the SSH transport.
 * Nothing below cli/ reads the environment. Every switch is described in docs/environment.md;
 * a new one is added here and there, and nowhere else.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FileFastPaths } from '../block/file-device.js';
import { isXtsEngineName, type XtsEngineName } from '../crypt/xts-cipher.js';
import { NbdcryptError } from '../errors.js';
import type { LogLevel } from '../log.js';
import type { KeyslotEngines } from '../luks/kdf.js';

export interface Environment {
  /** NBDCRYPT_LOG: least severe level printed (default info; an unknown value means info). */
  logLevel: LogLevel;
  /** NBDCRYPT_ENGINE (XTS engine of data and keyslots) and NBDCRYPT_ARGON2 (argon2 implementation). */
  engines: KeyslotEngines;
  /** NBDCRYPT_NOWAIT_IO=0, NBDCRYPT_WRITE_BATCH=0, NBDCRYPT_READAHEAD=1. */
  fileFastPaths: FileFastPaths;
  /** NBDCRYPT_YOUNG_GC=0 turns off the heap guard's minor collections. */
  youngGc: boolean;
  /** SSH_AUTH_SOCK: the ssh-agent to ask for keys. */
  sshAgentSocket: string | undefined;
  /** XDG_RUNTIME_DIR: where serve makes its private socket directory (else the temp dir). */
  runtimeDir: string | undefined;
  /** NOTIFY_SOCKET: the service manager's readiness socket (systemd Type=notify), if any. */
  notifySocket: string | undefined;
  /** NBDCRYPT_DEBUG=1: error messages carry their stack trace. */
  debug: boolean;
}

const logLevels: readonly string[] = ['error', 'warn', 'info', 'debug'];

/** The switches of `env`; EUSAGE for a value that names nothing (NBDCRYPT_ENGINE). */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  const engine = env.NBDCRYPT_ENGINE;
  let xts: XtsEngineName | undefined;
  if (engine !== undefined && engine !== '') {
    if (!isXtsEngineName(engine)) throw new NbdcryptError('EUSAGE', `NBDCRYPT_ENGINE='${engine}' is not an engine; use native, node or reference`);
    xts = engine;
  }
  const log = env.NBDCRYPT_LOG;
  return {
    logLevel: log !== undefined && logLevels.includes(log) ? (log as LogLevel) : 'info',
    engines: { xts, argon2: env.NBDCRYPT_ARGON2 === 'noble' ? 'noble' : 'native' },
    fileFastPaths: {
      nowaitIo: env.NBDCRYPT_NOWAIT_IO !== '0',
      writeBatch: env.NBDCRYPT_WRITE_BATCH !== '0',
      readahead: env.NBDCRYPT_READAHEAD === '1',
    },
    youngGc: env.NBDCRYPT_YOUNG_GC !== '0',
    sshAgentSocket: env.SSH_AUTH_SOCK || undefined,
    runtimeDir: env.XDG_RUNTIME_DIR || undefined,
    notifySocket: env.NOTIFY_SOCKET || undefined,
    debug: env.NBDCRYPT_DEBUG === '1',
  };
}

/**
 * Asks libuv for `threads` pool threads unless the user chose a number (UV_THREADPOOL_SIZE).
 * libuv reads the variable once, when its pool first runs work, and under ESM the module
 * loader has already done that before any command runs: so this sizes the pool of the
 * processes the command starts (bench e2e's `nbdcrypt serve`), and this process' own pool
 * follows the variable only when it was set before node started (docs/environment.md).
 */
export function requestThreadPoolSize(threads: number): void {
  process.env.UV_THREADPOOL_SIZE ??= String(threads);
}

/** Absolute path of the executable `name` in PATH, /usr/sbin or /sbin; undefined if none. */
export function findExecutable(name: string, isUsable: (path: string) => boolean = existsSync): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (dir !== '' && isUsable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}
