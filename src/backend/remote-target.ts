/**
 * Opens a remote TARGET (nbd://, nbd+unix://, ssh://, ssh+cmd://) as an NbdClient: picks
 * the transport, applies the connection count (default 4 channels of one session over
 * ssh://; 1 for ssh+cmd://, where each would be its own ssh process, and for nbd), I/O
 * timeout, replay limit and SSH options. Used by open-target.ts.
 * Peer behaviour it relies on: docs/formats.md (NBD peers, SSH).
 */
import { NbdcryptError } from '../errors.js';
import { NbdClient } from '../nbd/client.js';
import { sshCommandTransport } from '../transport/ssh-command.js';
import { SshTransport } from '../transport/ssh.js';
import { windowForChannels } from '../transport/ssh-window.js';
import { tcpTransport } from '../transport/tcp.js';
import type { Transport } from '../transport/transport.js';
import { unixTransport } from '../transport/unix.js';
import { parseTargetUri } from './target-uri.js';

export interface RemoteTargetOptions {
  readOnly?: boolean;
  /** NBD connections (default 4 over ssh://, 1 otherwise); used only if the remote allows multi-conn. */
  connections?: number;
  /** Seconds a request may wait across reconnects before failing; 0 = forever (default). */
  ioTimeout?: number;
  /** Bytes of unflushed writes kept for replay (default 256 MiB). */
  replayLimit?: number;
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
}

/**
 * Builds the transport for a remote target URI (exported for benchmarks and tests), with the
 * number of NBD connections to open over it: 4 over ssh2 by default, 1 otherwise (with
 * ssh+cmd each connection is its own `ssh` process and login, unless ControlMaster).
 */
export function remoteTransport(spec: string, opts: RemoteTargetOptions = {}): { transport: Transport; exportName: string; connections: number } {
  const t = parseTargetUri(spec);
  if (t.kind === 'sftp') throw new NbdcryptError('EUSAGE', `target '${spec}': an sftp:// target has no NBD transport`);
  const connectTimeoutMs = opts.connectTimeout !== undefined ? opts.connectTimeout * 1000 : undefined;
  const viaSsh2 = t.kind === 'ssh' && !opts.sshCommand;
  const connections = opts.connections ?? (viaSsh2 ? 4 : 1);
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
      const transport = new SshTransport({ ...common, channelWindow: windowForChannels(connections), ciphers: opts.ciphers, sftpRequest: opts.sftpRequest, keepaliveIntervalMs: opts.keepaliveInterval, askPassphrase: opts.askPassphrase, askPassword: opts.askPassword });
      return { transport, exportName, connections };
    }
  }
}

export async function openRemoteTarget(spec: string, opts: RemoteTargetOptions = {}): Promise<NbdClient> {
  const { transport, exportName, connections } = remoteTransport(spec, opts);
  try {
    return await NbdClient.connect(transport, exportName, {
      connections,
      ioTimeout: opts.ioTimeout,
      replayLimit: opts.replayLimit,
      readOnly: opts.readOnly,
      name: spec,
    });
  } catch (e) {
    await transport.close();
    throw e;
  }
}
