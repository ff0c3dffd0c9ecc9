/**
 * Opens an sftp:// TARGET: the image file on an SFTP server, reached over one ssh2
 * connection (the same SSH options as ssh://). Each session is a set of SFTP channels with
 * the file open (src/sftp); ResilientDevice reopens sessions after a drop and replays. A
 * writer holds `PATH.lock` from the first open to close, across reconnects. See docs/sftp.md.
 */
import { NbdcryptError, isNbdcryptError } from '../errors.js';
import { log } from '../log.js';
import { ResilientDevice } from '../resilient/resilient-device.js';
import type { SessionOpener } from '../resilient/session.js';
import { dropLock, lockText, takeLock } from '../sftp/lock-file.js';
import type { SftpClient } from '../sftp/sftp-client.js';
import { openSftpSession, startClient, type ChannelSource } from '../sftp/sftp-open.js';
import type { SftpSession } from '../sftp/sftp-session.js';
import { SshTransport } from '../transport/ssh.js';
import type { RemoteTargetOptions } from './remote-target.js';
import { parseTargetUri } from './target-uri.js';

export interface SftpTargetOptions extends RemoteTargetOptions {
  /** Create the file with this size if it is missing or empty (format --size). */
  createSize?: number;
  /** With createSize: resize a file of another size (format --force). */
  resize?: boolean;
  /** Remove another writer's lock first (--break-lock). */
  breakLock?: boolean;
  /** false: never fsync on the server, do not offer FLUSH (--no-remote-flush). */
  remoteFlush?: boolean;
}

/** SFTP channels per session unless --connections says otherwise. */
const DEFAULT_CHANNELS = 4;

class SftpOpener implements SessionOpener {
  /** The lock this opener made (removed on close); undefined when none or shared. */
  private lock: { path: string; text: string } | undefined;
  private locked = false;
  private opened = false;
  /** Where the session's channels and the lock file's channel come from. */
  private readonly channels: ChannelSource;

  constructor(
    readonly name: string,
    private readonly transport: SshTransport,
    private readonly path: string,
    private readonly o: SftpTargetOptions,
  ) {
    this.channels = { open: () => transport.openSftp(), refused: SshTransport.isChannelRefusal, startTimeoutMs: transport.connectTimeoutMs };
  }

  async open(): Promise<SftpSession> {
    const readOnly = this.o.readOnly === true;
    // The lock comes first: format --size must not create or resize a file someone else writes.
    if (!readOnly && !this.locked) await this.takeLock();
    const first = !this.opened;
    const session = await openSftpSession(
      this.channels,
      {
        name: this.name,
        path: this.path,
        channels: this.o.connections ?? DEFAULT_CHANNELS,
        readOnly,
        // Only the first open may create or resize; a reopen must find the same file.
        createSize: first ? this.o.createSize : undefined,
        resize: this.o.resize,
        remoteFlush: this.o.remoteFlush !== false,
        buffers: this.o.io?.buffers,
      },
    ).catch((e: unknown) => {
      // Retrying cannot cure a refusal of the file itself.
      if (isNbdcryptError(e, 'EACCES') || isNbdcryptError(e, 'ENOTSUP') || isNbdcryptError(e, 'EEXIST')) Object.assign(e, { fatal: true });
      throw e;
    });
    this.opened = true;
    return session;
  }

  async close(): Promise<void> {
    const lock = this.lock;
    this.lock = undefined;
    if (lock) {
      await this.withChannel((sftp) => dropLock(sftp, lock.path, lock.text)).then(
        (dropped) => {
          if (!dropped) log.warn(`${this.name}: ${lock.path} is no longer ours; left it as it is`);
        },
        (e: Error) => log.warn(`${this.name}: could not remove the lock file ${lock.path} (${e.message}); remove it by hand or use --break-lock next time`),
      );
    }
    await this.transport.close();
  }

  private async takeLock(): Promise<void> {
    const path = `${this.path}.lock`;
    const text = lockText(new Date());
    const how = await this.withChannel((sftp) => takeLock(sftp, { name: this.name, path, breakLock: this.o.breakLock === true }, text));
    if (how === 'broken') log.warn(`${this.name}: --break-lock: took over ${path}`);
    this.locked = true;
    if (how !== 'shared') this.lock = { path, text };
  }

  private async withChannel<T>(f: (sftp: SftpClient) => Promise<T>): Promise<T> {
    // The lock file needs no request size: no limits exchange.
    const sftp = await startClient(this.channels, { name: this.name }, false);
    try {
      return await f(sftp);
    } finally {
      sftp.end();
    }
  }
}

export async function openSftpTarget(spec: string, o: SftpTargetOptions = {}): Promise<ResilientDevice> {
  const t = parseTargetUri(spec);
  if (t.kind !== 'sftp') throw new NbdcryptError('EUSAGE', `target '${spec}' is not an sftp:// target`);
  if (o.sshCommand) throw new NbdcryptError('EUSAGE', `target '${spec}': --ssh-command does not apply to sftp:// targets (SFTP runs over the built-in SSH client)`);
  const transport = new SshTransport({
    host: t.host,
    port: t.port,
    user: t.user,
    sshConfigPath: o.sshConfigPath,
    knownHostsPath: o.knownHostsPath,
    acceptNewHostKey: o.acceptNewHostKey,
    identity: o.identity,
    connectTimeoutMs: o.connectTimeout !== undefined ? o.connectTimeout * 1000 : undefined,
    keepaliveIntervalMs: o.keepaliveInterval,
    ciphers: o.ciphers,
    // The sftp subsystem runs for real here, so sshd turns Nagle off anyway.
    sftpRequest: false,
    askPassphrase: o.askPassphrase,
    askPassword: o.askPassword,
    description: spec,
    noteTransientBytes: o.io?.noteTransientBytes,
  });
  // The command's buffer pool for read destinations and the replay log's copies, as for ssh://.
  return ResilientDevice.open(new SftpOpener(spec, transport, t.path, o), { ioTimeout: o.ioTimeout, replayLimit: o.replayLimit, readOnly: o.readOnly, buffers: o.io?.buffers });
}
