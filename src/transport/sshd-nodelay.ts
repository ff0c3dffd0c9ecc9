/**
 * Gets sshd to turn Nagle's algorithm off on this SSH connection. OpenSSH's sshd sets
 * TCP_NODELAY on its client socket only once a session runs a command, shell or subsystem
 * (docs/formats.md, SSH); a connection that only forwards, like ours or `ssh -N -L`, keeps
 * Nagle on. sshd then holds each small packet, such as an NBD reply, while an earlier small one
 * is unacknowledged (it sends WINDOW_ADJUSTs while it consumes a write), and the client's
 * delayed ACK stretches that to 40 ms on loopback and to a round trip or more on a WAN: a 1 MiB
 * write at queue depth 1 takes two round trips instead of one (docs/performance.md, SSH).
 *
 * Opening the sftp subsystem, which nearly every server that allows file transfer has
 * (internal-sftp included), and closing it at once is enough. The request is made once per
 * SSH session; a refusal changes nothing but the latency. On an account whose authorized_keys
 * or sshd_config forces a command, sshd runs that command instead, with its input closed; the
 * `--no-sftp-request` option of the CLI (SshTransportOptions.sftpRequest) skips the request.
 */
import type { Client } from 'ssh2';

/** Calls `done(null)` once sshd ran the subsystem, or `done(reason)` when it was refused. */
export function requestSftpSubsystem(client: Client, done: (refusal: string | null) => void): void {
  client.subsys('sftp', (err, stream) => {
    if (err) {
      done(err.message);
      return;
    }
    // EOF ends sftp-server; the channel then closes from sshd's side.
    stream.on('error', () => undefined);
    stream.resume();
    stream.stderr.resume();
    stream.end();
    done(null);
  });
}
