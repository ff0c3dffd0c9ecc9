/**
 * The sshd_config of a private OpenSSH sshd on loopback, as `nbdcrypt bench e2e` runs it; the
 * tests' sshd (peers/sshd.ts) uses the same builder so both measure and test the same server
 * setup.
 */
import { join } from 'node:path';

/**
 * An sshd_config for a private sshd on 127.0.0.1:`port`: host key `hostKey`, keys from
 * `dir`/authorized_keys, key login only, forwarding and the sftp subsystem as on a stock
 * server. sshd keeps the first value it reads for most keywords, so `extra` lines (first)
 * override these.
 */
export function sshdConfig(o: { port: number; hostKey: string; dir: string; extra?: string[] }): string {
  return [
    ...(o.extra ?? []),
    `Port ${o.port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${o.hostKey}`,
    `AuthorizedKeysFile ${join(o.dir, 'authorized_keys')}`,
    `PidFile ${join(o.dir, 'sshd.pid')}`,
    'StrictModes no',
    'UsePAM no',
    'PermitRootLogin yes',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'AllowTcpForwarding yes',
    'AllowStreamLocalForwarding yes',
    // nbdcrypt opens it once per session (transport/sshd-nodelay.ts).
    'Subsystem sftp internal-sftp',
    'MaxSessions 64',
    'MaxStartups 100',
    'LogLevel ERROR',
    '',
  ].join('\n');
}
