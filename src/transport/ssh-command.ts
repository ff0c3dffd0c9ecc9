/**
 * SSH transport through OpenSSH itself: each NBD connection runs `ssh -W HOST:PORT host`
 * (or `-W /path/to/socket`) and speaks NBD over its standard input and output (one loopback
 * TCP connection, loopback-pair.ts), so every OpenSSH feature applies: ProxyJump,
 * ControlMaster multiplexing, certificates, FIDO keys, ~/.ssh/config in full. ssh asks for passwords on the terminal itself; without a terminal
 * it runs in BatchMode. ssh's exit status and message are mapped to ECONNECT, EAUTH or
 * EHOSTKEY. Unless the ssh configuration picks its own ciphers, AES-GCM goes first
 * (ssh-command-ciphers.ts). Spec: ssh(1) -W.
 */
import { spawn } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { NbdcryptError } from '../errors.js';
import { loopbackPair } from './loopback-pair.js';
import { preferredCipherArgs } from './ssh-command-ciphers.js';
import type { SshTransportOptions } from './ssh.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type Transport } from './transport.js';

/** The SshTransportOptions that `ssh -W` takes from the target (OpenSSH keeps its own alive and sizes its own windows). */
export type SshCommandOptions = Pick<SshTransportOptions, 'host' | 'port' | 'user' | 'remote' | 'sshConfigPath' | 'knownHostsPath' | 'acceptNewHostKey' | 'identity' | 'connectTimeoutMs'>;

/** The arguments of `ssh -W`; `extra` (e.g. a cipher order) goes before the host. */
export function sshCommandArgs(o: SshCommandOptions, extra: string[] = []): string[] {
  const remote = o.remote ?? { host: '127.0.0.1', port: 10809 };
  const w = 'socket' in remote ? remote.socket : `${remote.host.includes(':') ? `[${remote.host}]` : remote.host}:${remote.port}`;
  const args = ['-W', w, '-o', 'ServerAliveInterval=15', '-o', `ConnectTimeout=${Math.ceil((o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS) / 1000)}`];
  if (!process.stdin.isTTY) args.push('-o', 'BatchMode=yes');
  if (o.port) args.push('-p', String(o.port));
  if (o.user) args.push('-l', o.user);
  if (o.sshConfigPath) args.push('-F', o.sshConfigPath);
  if (o.knownHostsPath) args.push('-o', `UserKnownHostsFile=${o.knownHostsPath}`);
  args.push('-o', `StrictHostKeyChecking=${o.acceptNewHostKey ? 'accept-new' : 'yes'}`);
  for (const i of o.identity ?? []) args.push('-i', i);
  args.push(...extra, '--', o.host);
  return args;
}

/** What decides the configuration ssh -G reports for this connection. */
function configArgs(o: SshCommandOptions): string[] {
  return [...(o.sshConfigPath ? ['-F', o.sshConfigPath] : []), ...(o.port ? ['-p', String(o.port)] : []), ...(o.user ? ['-l', o.user] : []), o.host];
}

function mapSshFailure(stderr: string, code: number | null, what: string): NbdcryptError {
  const msg = stderr.trim().split('\n').filter((l) => l && !/^Warning: Permanently added/.test(l)).slice(-3).join(' / ') || `ssh exited with status ${code}`;
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|host key .* (?:revoked|changed)/i.test(stderr)) {
    return new NbdcryptError('EHOSTKEY', `${what}: OpenSSH refused the host key (${msg}); check known_hosts or use --accept-new-host-key`);
  }
  if (/Permission denied|Too many authentication failures/i.test(stderr)) {
    return new NbdcryptError('EAUTH', `${what}: SSH authentication failed (${msg}); check the user and key`);
  }
  return new NbdcryptError('ECONNECT', `${what}: ssh failed (${msg}); check the host, port and that nbd-server listens on the remote`);
}

export function sshCommandTransport(o: SshCommandOptions): Transport {
  const description = `ssh+cmd://${o.user ? `${o.user}@` : ''}${o.host}${o.port ? `:${o.port}` : ''}`;
  const children = new Set<ReturnType<typeof spawn>>();
  // Asked once per transport: every connection of a target uses the same configuration.
  let ciphers: Promise<string[]> | undefined;
  return {
    description,
    open: async () => {
      const cipherArgs = await (ciphers ??= preferredCipherArgs(configArgs(o)));
      const timeoutMs = (o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS) + 2000;
      let pair: Awaited<ReturnType<typeof loopbackPair>>;
      try {
        pair = await loopbackPair(timeoutMs);
      } catch (e) {
        throw new NbdcryptError('ECONNECT', `${description}: cannot connect ssh's standard input and output (${(e as Error).message})`, { cause: e });
      }
      const { ours, theirs } = pair;
      return new Promise<Duplex>((resolve, reject) => {
        // ssh reads and writes the loopback connection as its standard input and output
        // (loopback-pair.ts); our copy of its end is closed once ssh holds it.
        const child = spawn('ssh', sshCommandArgs(o, cipherArgs), { stdio: [theirs, theirs, 'pipe'] });
        theirs.destroy();
        children.add(child);
        let stderr = '';
        let settled = false;
        child.stderr!.on('data', (d: Buffer) => {
          if (stderr.length < 8192) stderr += d.toString();
        });
        const timer = setTimeout(() => fail(new NbdcryptError('ECONNECT', `${description}: no answer within ${timeoutMs} ms`)), timeoutMs);
        const fail = (e: NbdcryptError): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          child.kill('SIGKILL');
          ours.destroy();
          reject(e);
        };
        ours.on('error', () => undefined);
        child.on('error', (e) => fail(new NbdcryptError('ECONNECT', `${description}: cannot run ssh (${e.message}); install openssh-client`, { cause: e })));
        child.on('exit', (code) => {
          children.delete(child);
          // Let stderr drain before judging.
          setImmediate(() => fail(mapSshFailure(stderr, code, description)));
        });
        // The NBD server speaks first (greeting), so the first byte proves the tunnel is up.
        // 'readable' leaves the bytes buffered for the NBD client, and once its listener is
        // gone the client's own 'data' listener starts the flow.
        ours.once('readable', () => {
          // At end of stream (ssh failed) the exit handler reports why.
          if (settled || ours.readableLength === 0) return;
          settled = true;
          clearTimeout(timer);
          ours.on('close', () => child.kill('SIGTERM'));
          child.on('exit', () => ours.destroy());
          resolve(ours);
        });
      });
    },
    close: async () => {
      for (const c of children) c.kill('SIGTERM');
      children.clear();
    },
  };
}
