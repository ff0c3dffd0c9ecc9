/**
 * Turns a TARGET argument into a BlockDevice. A small dispatcher: each kind is one entry in
 * `kinds` (`file:PATH`, `memory:SIZE`; the remote kinds nbd://, nbd+unix://, ssh://, sftp://
 * are added here the same way). A TARGET with no known kind prefix is a file path.
 */
import type { BlockDevice } from '../block/block-device.js';
import { FileDevice, type FileFastPaths } from '../block/file-device.js';
import { MemoryDevice } from '../block/memory-device.js';
import { parseSize } from '../size.js';
import { NbdcryptError } from '../errors.js';
import type { SftpTargetOptions } from './sftp-target.js';

/** Loaded on demand so file/memory targets never pull in ssh2 and the NBD client. */
const openRemoteTarget: Opener = async (_rest, spec, opts) => (await import('./remote-target.js')).openRemoteTarget(spec, opts);

/** Remote kinds add connections, ioTimeout, replayLimit, SSH options (remote-target.ts), sftp:// its own (sftp-target.ts). */
export interface TargetOptions extends SftpTargetOptions {
  readOnly?: boolean;
  /** Shortcuts of file targets (default: all on). */
  fileFastPaths?: FileFastPaths;
}

type Opener = (rest: string, spec: string, opts: TargetOptions) => Promise<BlockDevice>;

/** Prefix (including its separator) → opener. Longest prefixes must not shadow each other. */
const kinds: [prefix: string, open: Opener][] = [
  ['file:', (path, spec, opts) => openFile(path, spec, opts)],
  ['memory:', async (size, _spec, opts) => new MemoryDevice(parseSize(size, 'memory target size'), { readOnly: opts.readOnly, buffers: opts.io?.buffers })],
  ['nbd://', openRemoteTarget],
  ['nbd+unix://', openRemoteTarget],
  ['ssh://', openRemoteTarget],
  ['ssh+cmd://', openRemoteTarget],
  ['sftp://', async (_rest, spec, opts) => (await import('./sftp-target.js')).openSftpTarget(spec, opts)],
];

export async function openTarget(spec: string, opts: TargetOptions = {}): Promise<BlockDevice> {
  for (const [prefix, open] of kinds) {
    if (spec.startsWith(prefix)) return open(spec.slice(prefix.length), spec, opts);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new NbdcryptError('EUSAGE', `target '${spec}': unsupported kind; use file:PATH, a plain path, memory:SIZE, nbd://, nbd+unix://, ssh://, ssh+cmd:// or sftp://`);
  }
  return openFile(spec, spec, opts);
}

async function openFile(path: string, spec: string, opts: TargetOptions): Promise<BlockDevice> {
  if (path === '') throw new NbdcryptError('EUSAGE', `target '${spec}' has an empty path`);
  // One writer per image, as for sftp:// (there a lock file, here an flock the kernel drops with us).
  return FileDevice.open(path, { readOnly: opts.readOnly, fastPaths: opts.fileFastPaths, buffers: opts.io?.buffers, lock: true });
}
