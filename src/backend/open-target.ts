/**
 * Turns a TARGET argument into a BlockDevice. A small dispatcher: each kind is one entry in
 * `kinds` (`file:PATH`, `memory:SIZE`; the remote kinds nbd://, nbd+unix://, ssh:// are added
 * here the same way). A TARGET with no known kind prefix is a file path.
 */
import type { BlockDevice } from '../block/block-device.js';
import { FileDevice, type FileFastPaths } from '../block/file-device.js';
import { MemoryDevice } from '../block/memory-device.js';
import { parseSize } from '../size.js';
import { NbdcryptError } from '../errors.js';
import type { RemoteTargetOptions } from './remote-target.js';

/** Loaded on demand so file/memory targets never pull in ssh2 and the NBD client. */
const openRemoteTarget: Opener = async (_rest, spec, opts) => (await import('./remote-target.js')).openRemoteTarget(spec, opts);

/** Remote kinds add connections, ioTimeout, replayLimit, SSH options (see remote-target.ts). */
export interface TargetOptions extends RemoteTargetOptions {
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
];

export async function openTarget(spec: string, opts: TargetOptions = {}): Promise<BlockDevice> {
  for (const [prefix, open] of kinds) {
    if (spec.startsWith(prefix)) return open(spec.slice(prefix.length), spec, opts);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new NbdcryptError('EUSAGE', `target '${spec}': unsupported kind; use file:PATH, a plain path, memory:SIZE, nbd://, nbd+unix://, ssh:// or ssh+cmd://`);
  }
  return openFile(spec, spec, opts);
}

async function openFile(path: string, spec: string, opts: TargetOptions): Promise<BlockDevice> {
  if (path === '') throw new NbdcryptError('EUSAGE', `target '${spec}' has an empty path`);
  return FileDevice.open(path, { readOnly: opts.readOnly, fastPaths: opts.fileFastPaths, buffers: opts.io?.buffers });
}
