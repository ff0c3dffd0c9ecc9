/** The SSH transport the SFTP tests open channels on: a test sshd, its host key trusted, no agent. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SshTransport } from '../../src/transport/ssh.js';
import type { SshdPeer } from '../../peers/sshd.js';

export function sftpTransport(sshd: SshdPeer): SshTransport {
  const knownHosts = join(sshd.dir, 'known_hosts');
  writeFileSync(knownHosts, `${sshd.knownHostsLine}\n`);
  return new SshTransport({ host: sshd.host, port: sshd.port, user: sshd.user, identity: [sshd.userKey], knownHostsPath: knownHosts, sshConfigPath: '/dev/null', sftpRequest: false, description: `sftp://${sshd.host}:${sshd.port}` });
}
