/**
 * The command-line options every command that opens a TARGET shares (serve, format, key,
 * dump, header): the remote link's tuning and SSH host-key policy, as one parseArgs table,
 * one converter to `TargetOptions` and one help paragraph, so the commands agree on names
 * and meaning. Spec of the targets: src/backend/target-uri.ts and docs/commands.md.
 */
import { NbdcryptError } from '../errors.js';
import type { TargetOptions } from '../backend/open-target.js';
import type { Environment } from './environment.js';
import { askSecretOnTerminal } from './passphrase.js';
import { parseSize } from '../size.js';

/** parseArgs option table for remote targets (spread into a command's own table). */
export const targetArgOptions = {
  connections: { type: 'string' },
  'io-timeout': { type: 'string' },
  'stall-timeout': { type: 'string' },
  'replay-limit': { type: 'string' },
  'connect-timeout': { type: 'string' },
  'accept-new-host-key': { type: 'boolean' },
  'known-hosts': { type: 'string' },
  identity: { type: 'string' },
  'ssh-command': { type: 'boolean' },
  'no-sftp-request': { type: 'boolean' },
  'break-lock': { type: 'boolean' },
  'no-remote-flush': { type: 'boolean' },
} as const;

export const targetHelp = `TARGET:
  file:PATH | PATH   a local image file or block device
  memory:SIZE        a sparse in-RAM disk (lost on exit; for trying things out)
  ssh://[USER@]HOST[:PORT]/EXPORT[?nbd=H:P|socket=PATH]
                     export EXPORT of the nbd-server on HOST, reached through SSH
                     (direct-tcpip to H:P, default 127.0.0.1:10809, or to a unix socket);
                     user, port and identity also come from the OpenSSH
                     configuration (as 'ssh -G HOST' prints it: Include, Match)
  ssh+cmd://...      the same through OpenSSH's 'ssh -W' (ProxyJump, ControlMaster)
  sftp://[USER@]HOST[:PORT]/PATH
                     the image as a plain LUKS2 file on any SFTP server (no nbd-server,
                     no port forwarding): PATH as the server sees it (a chrooted account
                     sees its chroot), /~/PATH relative to the login directory; same SSH
                     options as ssh://; a writer holds PATH.lock (docs/sftp.md)
  nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH
                     an nbd-server reached directly (no SSH: use only on loopback)

Remote TARGET options:
  --connections N        parallel NBD connections (default 2 over ssh, 1 otherwise; used
                         when the remote allows multi-conn)
  --io-timeout S         fail a request with EIO after S seconds without the remote,
                         reconnects included, whatever state its reply is in (default
                         0: wait forever; use with 'nbd-client -t 0'). Reconnects back
                         off from 100 ms to 5 s; a remote that breaks the NBD protocol
                         again right after each of 10 reconnects is given up on (every
                         request then fails with EIO), whatever this says
  --stall-timeout S      a connection with requests waiting and no byte moving either
                         way for S seconds (a remote that stopped mid-reply) counts as
                         dropped: reconnect, replay, retry (default 30; 0 = never)
  --replay-limit SIZE    unflushed writes kept in RAM to replay after a reconnect
                         (default 32M for serve, 256M otherwise; each time a quarter
                         of it has been written a flush starts in the background, at
                         the limit writes wait)
  --connect-timeout S    give up connecting after S seconds (default 10)
  --accept-new-host-key  accept and record an unknown SSH host key (like OpenSSH's
                         StrictHostKeyChecking=accept-new); a changed key is still refused
  --known-hosts FILE     known_hosts file (default ~/.ssh/known_hosts or the
                         UserKnownHostsFile of ~/.ssh/config)
  --identity FILE        SSH private key to try first (before ssh-agent and ~/.ssh/id_*)
  --ssh-command          use OpenSSH's ssh -W even for ssh:// targets
  --no-sftp-request      do not open (and at once close) the sftp subsystem once per SSH
                         session; sshd turns Nagle's algorithm off only for sessions that
                         run something, and without that each small reply can wait a round
                         trip. Use it where the account's forced command must not run.
  --break-lock           sftp://: remove another writer's PATH.lock first (only when the
                         process it names is gone, e.g. after a crash)
  --no-remote-flush      sftp://: use a server without fsync@openssh.com; FLUSH and FUA are
                         then not offered and a crash of the server can lose writes
`;

type Values = Record<string, string | boolean | string[] | undefined>;

function positive(v: string | undefined, name: string, allowZero: boolean): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !Number.isFinite(n) || (!allowZero && n === 0)) {
    throw new NbdcryptError('EUSAGE', `--${name} '${v}' must be a number ${allowZero ? '>= 0' : '> 0'}`);
  }
  return n;
}

/**
 * The TargetOptions the shared flags ask for (parseArgs values of `targetArgOptions`), with
 * what the environment adds: the ssh-agent socket and the file shortcuts.
 */
export function targetOptionsFromArgs(v: Values, env: Environment, readOnly = false): TargetOptions {
  const connections = positive(v.connections as string | undefined, 'connections', false);
  if (connections !== undefined && (!Number.isInteger(connections) || connections > 16)) {
    throw new NbdcryptError('EUSAGE', `--connections ${connections} must be a whole number from 1 to 16`);
  }
  const replay = v['replay-limit'] as string | undefined;
  return {
    readOnly,
    connections,
    ioTimeout: positive(v['io-timeout'] as string | undefined, 'io-timeout', true),
    stallTimeout: positive(v['stall-timeout'] as string | undefined, 'stall-timeout', true),
    replayLimit: replay === undefined ? undefined : parseSize(replay, '--replay-limit'),
    connectTimeout: positive(v['connect-timeout'] as string | undefined, 'connect-timeout', false),
    acceptNewHostKey: v['accept-new-host-key'] === true,
    knownHostsPath: v['known-hosts'] as string | undefined,
    identity: v.identity === undefined ? undefined : [v.identity as string],
    sshCommand: v['ssh-command'] === true,
    sftpRequest: v['no-sftp-request'] !== true,
    breakLock: v['break-lock'] === true,
    remoteFlush: v['no-remote-flush'] !== true,
    askPassphrase: (keyPath) => askSecretOnTerminal(`Enter passphrase for SSH key '${keyPath}': `),
    askPassword: (prompt) => askSecretOnTerminal(prompt),
    sshAgentSocket: env.sshAgentSocket,
    fileFastPaths: env.fileFastPaths,
  };
}
