/**
 * Opens a remote TARGET (nbd://, nbd+unix://, ssh://, ssh+cmd://) as a BlockDevice by
 * composing the stack: transport (ssh2 channels, ssh -W, tcp, unix) → NBD client session
 * (the protocol) → ResilientDevice (reconnect, replay, --io-timeout). Picks the connection
 * count (default SSH2_CONNECTIONS channels of one session over ssh://; 1 for ssh+cmd://, where
 * each would be its own ssh process, and for nbd), and passes the SSH options. Used by open-target.ts.
 * Peer behaviour it relies on: docs/formats.md (NBD peers, SSH).
 */
import { NbdcryptError } from '../errors.js';
import { openNbdSession } from '../nbd/client-open.js';
import { ResilientDevice, type ResilientOptions } from '../resilient/resilient-device.js';
import type { SessionOpener } from '../resilient/session.js';
import { sshCommandTransport } from '../transport/ssh-command.js';
import { SshTransport } from '../transport/ssh.js';
import { windowForChannels } from '../transport/ssh-window.js';
import { tcpTransport } from '../transport/tcp.js';
import type { Transport } from '../transport/transport.js';
import { unixTransport } from '../transport/unix.js';
import { parseTargetUri } from './target-uri.js';
import type { RequestIo } from '../block/request-io.js';
import { ignoreTransientBytes } from '../transient-buffers.js';

export interface RemoteTargetOptions {
  readOnly?: boolean;
  /** NBD connections (default SSH2_CONNECTIONS over ssh://, 1 otherwise); used only if the remote allows multi-conn. */
  connections?: number;
  /** Seconds a request may wait across reconnects before failing; 0 = forever (default). */
  ioTimeout?: number;
  /** Bytes of unflushed writes kept for replay (default 256 MiB). */
  replayLimit?: number;
  /** Seconds a busy connection may go without any byte moving before it counts as dropped (default 30; 0 = never). */
  stallTimeout?: number;
  /** Connect timeout in seconds (default 10). */
  connectTimeout?: number;
  acceptNewHostKey?: boolean;
  knownHostsPath?: string;
  sshConfigPath?: string;
  /** Identity files tried first. */
  identity?: string[];
  /** Use OpenSSH (`ssh -W`) for ssh:// targets too. */
  sshCommand?: boolean;
  /** ms between SSH keepalives (default 15000). */
  keepaliveInterval?: number;
  /** SSH cipher preference for the ssh2 transport (default aes128-gcm@openssh.com first). */
  ciphers?: string[];
  /** false: do not open the sftp subsystem that makes sshd turn Nagle off (transport/sshd-nodelay.ts). */
  sftpRequest?: boolean;
  askPassphrase?: (keyPath: string) => Promise<string | undefined>;
  askPassword?: (prompt: string) => Promise<string | undefined>;
  /** ssh-agent socket for ssh:// over ssh2 (the CLI passes SSH_AUTH_SOCK); none: no agent. */
  sshAgentSocket?: string;
  /** Request buffers and transient-bytes reporting of the command's runtime (default: none). */
  io?: RequestIo;
}

/**
 * Default NBD connections over ssh:// (channels of one SSH session). Each channel adds its own
 * SSH packets, wake-ups and remote nbd-server process per batch of requests, on both sides of
 * the link; two keep two requests' worth of remote parallelism (an RBD exporter read about as
 * fast with two as with four) for a quarter to a third less local CPU per byte than four, and
 * the session's window budget is the same (ssh-window.ts). Figures: docs/performance.md (SSH).
 */
export const SSH2_CONNECTIONS = 2;

/**
 * Builds the transport for a remote target URI (exported for benchmarks and tests), with the
 * number of NBD connections to open over it: SSH2_CONNECTIONS over ssh2 by default, 1 otherwise (with
 * ssh+cmd each connection is its own `ssh` process and login, unless ControlMaster).
 */
export function remoteTransport(spec: string, opts: RemoteTargetOptions = {}): { transport: Transport; exportName: string; connections: number } {
  const t = parseTargetUri(spec);
  if (t.kind === 'sftp') throw new NbdcryptError('EUSAGE', `target '${spec}': an sftp:// target has no NBD transport`);
  const connectTimeoutMs = opts.connectTimeout !== undefined ? opts.connectTimeout * 1000 : undefined;
  const viaSsh2 = t.kind === 'ssh' && !opts.sshCommand;
  const connections = opts.connections ?? (viaSsh2 ? SSH2_CONNECTIONS : 1);
  const exportName = t.exportName;
  switch (t.kind) {
    case 'nbd':
      return { transport: tcpTransport({ host: t.host, port: t.port, connectTimeoutMs }), exportName, connections };
    case 'nbd+unix':
      return { transport: unixTransport({ path: t.socket, connectTimeoutMs }), exportName, connections };
    case 'ssh':
    case 'ssh+cmd': {
      const common = {
        host: t.host,
        port: t.port,
        user: t.user,
        remote: t.remote,
        sshConfigPath: opts.sshConfigPath,
        knownHostsPath: opts.knownHostsPath,
        acceptNewHostKey: opts.acceptNewHostKey,
        identity: opts.identity,
        connectTimeoutMs,
      };
      if (!viaSsh2) return { transport: sshCommandTransport(common), exportName, connections };
      const transport = new SshTransport({ ...common, channelWindow: windowForChannels(connections), ciphers: opts.ciphers, sftpRequest: opts.sftpRequest, keepaliveIntervalMs: opts.keepaliveInterval, askPassphrase: opts.askPassphrase, askPassword: opts.askPassword, agentSocket: opts.sshAgentSocket, noteTransientBytes: opts.io?.noteTransientBytes });
      return { transport, exportName, connections };
    }
  }
}

/** Default --stall-timeout (seconds): no byte in either direction while requests wait. */
export const DEFAULT_STALL_TIMEOUT = 30;

export interface NbdDeviceOptions extends ResilientOptions {
  /** NBD connections to open when the remote allows CAN_MULTI_CONN (default 1). */
  connections?: number;
  /** See RemoteTargetOptions.stallTimeout. */
  stallTimeout?: number;
  /** Name used in logs and errors (no secrets), e.g. the target URI. */
  name?: string;
  /** Request buffers and transient-bytes reporting of the command's runtime (default: none). */
  io?: RequestIo;
}

/** An NBD export reached over `transport` as a device that survives drops; owns the transport from here on. */
export function openNbdDevice(transport: Transport, exportName: string, opts: NbdDeviceOptions = {}): Promise<ResilientDevice> {
  const name = opts.name ?? transport.description;
  // Bytes the transport reported already are not reported again by the NBD client.
  const clientIo = opts.io && transport.reportsReadBuffers ? { ...opts.io, noteTransientBytes: ignoreTransientBytes } : opts.io;
  const session = { name, stallTimeoutMs: (opts.stallTimeout ?? DEFAULT_STALL_TIMEOUT) * 1000, io: clientIo };
  let closed: Promise<void> | undefined;
  const opener: SessionOpener = {
    name,
    open: () => openNbdSession(() => transport.open(), exportName, opts.connections ?? 1, session),
    close: () => (closed ??= transport.close()),
  };
  return ResilientDevice.open(opener, { ...opts, buffers: opts.io?.buffers });
}

export async function openRemoteTarget(spec: string, opts: RemoteTargetOptions = {}): Promise<ResilientDevice> {
  const { transport, exportName, connections } = remoteTransport(spec, opts);
  return openNbdDevice(transport, exportName, {
    connections,
    ioTimeout: opts.ioTimeout,
    replayLimit: opts.replayLimit,
    stallTimeout: opts.stallTimeout,
    readOnly: opts.readOnly,
    name: spec,
    io: opts.io,
  });
}
