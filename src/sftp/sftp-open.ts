/**
 * Opens an SftpSession on the image file: checks the path (a directory or a missing parent
 * gets its own message), creates or sizes the file for `format --size` with SETSTAT (sparse:
 * nothing is written), opens it on up to `channels` SFTP channels, the others all at once after the first (a server that refuses
 * more channels than it allows, MaxSessions, gets used with what it gave), and reads what
 * the server offers: limits@openssh.com for the request size, fsync@openssh.com for flushes.
 */
import { posix } from 'node:path';
import type { Duplex } from 'node:stream';
import type { RequestBuffers } from '../block/buffer-pool.js';
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';
import { SftpChannel } from './sftp-channel.js';
import { SftpClient } from './sftp-client.js';
import { MAX_READ } from './sftp-frames.js';
import { SftpSession } from './sftp-session.js';
import { describeStatus, FX, openError, statusOf } from './sftp-status.js';
import { PFLAG as O, type FileAttrs } from './sftp-wire.js';

export interface SftpOpenOptions {
  /** Secret-free name for errors (the target URI). */
  name: string;
  /** The image path as the server resolves it (relative: from the login directory). */
  path: string;
  channels: number;
  readOnly: boolean;
  /** Create the file with this size if missing or empty (format --size). */
  createSize?: number;
  /** With createSize: resize an existing file of another size instead of refusing. */
  resize?: boolean;
  /** false: never send fsync@openssh.com, do not offer FLUSH (--no-remote-flush). */
  remoteFlush: boolean;
  /** Where read destinations come from (the command's pool); default fresh buffers. */
  buffers?: RequestBuffers;
}

/** Opens one more raw `sftp` subsystem channel; `refused` tells a refusal of that channel alone. */
export interface ChannelSource {
  open(): Promise<Duplex>;
  refused(e: unknown): boolean;
  /** Bound on the VERSION (and limits) exchange of a new channel; default SftpClient's. */
  startTimeoutMs?: number;
}

/** Request size when the server does not state its limits (what every server takes). */
export const DEFAULT_CHUNK = 32 * 1024;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

export async function openSftpSession(source: ChannelSource, o: SftpOpenOptions): Promise<SftpSession> {
  const first = await startClient(source, o);
  const chans: SftpChannel[] = [];
  try {
    await checkPath(first, o);
    const flags = o.readOnly ? O.READ : O.READ | O.WRITE | (o.createSize !== undefined ? O.CREAT : 0);
    chans.push(new SftpChannel(first, await call<Buffer>(o, (cb) => first.open(o.path, flags, cb))));
    const size = await sizeFile(chans[0]!, o);
    const fsync = first.extensions.has('fsync@openssh.com');
    if (!fsync && o.remoteFlush && !o.readOnly) {
      throw new NbdcryptError('ENOTSUP', `${o.name}: the SFTP server has no fsync@openssh.com, so writes could not be made durable; use --no-remote-flush to accept that (FLUSH is then not offered and a crash of the server can lose writes)`);
    }
    // The other channels open at once: each costs the server a session (a process for an
    // external sftp-server), and opening them one after another multiplied a reconnect's time.
    const others = await Promise.allSettled(Array.from({ length: o.channels - 1 }, () => openChannel(source, o)));
    let refused = false;
    let failure: unknown;
    for (const r of others) {
      if (r.status === 'fulfilled') chans.push(r.value);
      else if (source.refused(r.reason)) refused = true;
      else failure ??= r.reason;
    }
    if (failure !== undefined) throw failure;
    if (refused) {
      const n = chans.length;
      log.warn(`${o.name}: the SSH server allows only ${n} SFTP channel${n === 1 ? '' : 's'} per connection (MaxSessions), not the ${o.channels} asked for; using ${n}`);
    }
    return new SftpSession(chans, { name: o.name, size, chunk: chunkSize(first), flush: fsync && o.remoteFlush, readOnly: o.readOnly, buffers: o.buffers });
  } catch (e) {
    for (const c of chans) c.destroy();
    first.destroy();
    throw e;
  }
}

/** The largest payload the server takes per request: its stated limits, else 32 KiB. */
function chunkSize(sftp: SftpClient): number {
  const l = sftp.limits;
  if (!l || !l.maxReadLength || !l.maxWriteLength) return DEFAULT_CHUNK;
  // Whole pages, so pieces of aligned requests stay aligned on the server; no larger than
  // the client accepts back in one DATA packet.
  const max = Math.min(l.maxReadLength, l.maxWriteLength, MAX_READ);
  return Math.max(DEFAULT_CHUNK, max - (max % 4096));
}

/** One more channel with the image open on it (read-write unless the session is read-only). */
async function openChannel(source: ChannelSource, o: SftpOpenOptions): Promise<SftpChannel> {
  // The request size comes from the first channel's limits: this one need not ask again.
  const sftp = await startClient(source, o, false);
  const handle = await call<Buffer>(o, (cb) => sftp.open(o.path, o.readOnly ? O.READ : O.READ | O.WRITE, cb)).catch((e: Error) => {
    sftp.destroy();
    throw e;
  });
  return new SftpChannel(sftp, handle);
}

async function checkPath(sftp: SftpClient, o: SftpOpenOptions): Promise<void> {
  let st: FileAttrs | undefined;
  try {
    st = await call<FileAttrs>(o, (cb) => sftp.stat(o.path, cb));
  } catch (e) {
    if (!(e instanceof NbdcryptError) || e.code !== 'ENOEXPORT') throw e;
    const dir = posix.dirname(o.path);
    const parent = await call<FileAttrs>(o, (cb) => sftp.stat(dir, cb)).catch(() => undefined);
    if (!parent) throw new NbdcryptError('ENOEXPORT', `${o.name}: no directory ${dir} on the server (paths are absolute as the server sees them, a chrooted account sees its chroot; /~/ is the login directory)`);
    if (o.createSize === undefined) throw e;
  }
  if (st && st.mode !== undefined && (st.mode & S_IFMT) === S_IFDIR) throw new NbdcryptError('ENOEXPORT', `${o.name}: ${o.path} is a directory on the server, not an image file; name the file inside it`);
}

/** The file's size, after creating or resizing it for format --size (SETSTAT, no data written). */
async function sizeFile(ch: SftpChannel, o: SftpOpenOptions): Promise<number> {
  const size = await fileSize(ch, o);
  const want = o.createSize;
  if (want === undefined || size === want) return size;
  if (size !== 0 && !o.resize) {
    throw new NbdcryptError('EEXIST', `${o.name}: ${o.path} already exists with ${size} bytes, not the --size given; drop --size, or add --force to resize and format it`);
  }
  await call<void>(o, (cb) => ch.sftp.setSize(ch.handle, want, cb));
  const after = await fileSize(ch, o);
  if (after !== want) throw new NbdcryptError('EIO', `${o.name}: the server did not set the size of ${o.path} to ${want} bytes (it has ${after})`);
  return want;
}

async function fileSize(ch: SftpChannel, o: SftpOpenOptions): Promise<number> {
  const st = await call<FileAttrs>(o, (cb) => ch.sftp.fstat(ch.handle, cb));
  if (st.size === undefined) throw new NbdcryptError('EIO', `${o.name}: the server did not tell the size of ${o.path}; it cannot serve as an image`);
  return st.size;
}

/** One more channel with the SFTP client started on it (VERSION, and limits with `askLimits`, exchanged). */
export async function startClient(source: Pick<ChannelSource, 'open' | 'startTimeoutMs'>, o: Pick<SftpOpenOptions, 'name'>, askLimits = true): Promise<SftpClient> {
  const ch = await source.open();
  return SftpClient.start(ch, source.startTimeoutMs, askLimits).catch((e: Error) => {
    throw new NbdcryptError('ECONNECT', `${o.name}: the SFTP server did not start the protocol (${e.message})`, { cause: e });
  });
}

/** Runs one SFTP call; a server answer becomes openError's line, a lost channel ECONNECT. */
function call<T>(o: SftpOpenOptions, f: (cb: (err: Error | undefined, v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    f((err, v) => {
      if (!err) return resolve(v);
      if (statusOf(err) === FX.FAILURE) return reject(new NbdcryptError('EIO', `${o.name}: ${o.path}: ${describeStatus(err)}`, { cause: err }));
      if (statusOf(err) !== undefined) return reject(openError(o.name, o.path, err));
      reject(new NbdcryptError('ECONNECT', `${o.name}: the SFTP channel closed while opening ${o.path} (${err.message})`, { cause: err }));
    }),
  );
}
