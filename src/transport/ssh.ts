/**
 * SSH transport over ssh2: ONE SSH session carries every NBD connection, each on its own
 * `direct-tcpip` channel to the remote nbd-server (default 127.0.0.1:10809) or an
 * `direct-streamlocal@openssh.com` channel to its unix socket. The session is opened on
 * first use, re-established after a drop (the NBD client's reconnect calls open() again),
 * checks the host key against known_hosts, authenticates with agent/keys/password and sends
 * keepalives. Errors: ECONNECT, EAUTH, EHOSTKEY. See docs/formats.md (SSH). What it uses of
 * ssh2's internals, and the fallback when they change, is in ssh2-internals.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import ssh2, { type ClientChannel, type ConnectConfig } from 'ssh2';
import { NbdcryptError } from '../errors.js';
import type { NoteTransientBytes } from '../transient-buffers.js';
import { log } from '../log.js';
import { knownKeyTypes, parseKnownHosts, verifyHostKey } from './known-hosts.js';
import { SshAuth } from './ssh-auth.js';
import { enlargeReceiveWindow, SFTP_WINDOW } from './ssh-window.js';
import { Ssh2Patches } from './ssh2-internals.js';
import { requestSftpSubsystem } from './sshd-nodelay.js';
import { hostSshConfig } from './openssh-config.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type Transport } from './transport.js';

export type RemoteEndpoint = { host: string; port: number } | { socket: string };

export interface SshTransportOptions {
  /** Host as given in the target (an alias ~/.ssh/config may rename). */
  host: string;
  port?: number;
  user?: string;
  /** Where the nbd-server listens on the remote (default 127.0.0.1:10809). */
  remote?: RemoteEndpoint;
  sshConfigPath?: string;
  knownHostsPath?: string;
  acceptNewHostKey?: boolean;
  /** Identity files tried before those from ~/.ssh/config and the defaults. */
  identity?: string[];
  connectTimeoutMs?: number;
  /** ms between SSH keepalives (default 15000; 0 = off). */
  keepaliveIntervalMs?: number;
  /** Receive window per channel in bytes (default 8 MiB; 0 keeps ssh2's 2 MiB); see ssh-window.ts. */
  channelWindow?: number;
  /** Receive window per SFTP channel in bytes (default SFTP_WINDOW; 0 keeps ssh2's 2 MiB). */
  sftpWindow?: number;
  /** Cipher preference (default aes128-gcm@openssh.com first, as ssh2 does on x86). */
  ciphers?: string[];
  /** Open and close the sftp subsystem once per session so sshd turns Nagle off (default true; sshd-nodelay.ts). */
  sftpRequest?: boolean;
  askPassphrase?: (keyPath: string) => Promise<string | undefined>;
  askPassword?: (prompt: string) => Promise<string | undefined>;
  /** ssh-agent socket to ask for keys (the CLI passes SSH_AUTH_SOCK); none: no agent. */
  agentSocket?: string;
  /** Where the session's socket traffic is reported as short-lived bytes (default: nowhere). */
  noteTransientBytes?: NoteTransientBytes;
  /** Replaces the default description (e.g. the sftp:// target, which forwards nothing). */
  description?: string;
}

const { Client } = ssh2;
type Client = InstanceType<typeof Client>;

const HOST_KEY_ALGOS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
const DEFAULT_CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes256-ctr'];

export class SshTransport implements Transport {
  readonly description: string;
  /** Channel data are slices of the socket reads that Ssh2Patches reports. */
  readonly reportsReadBuffers = true;
  private session: Promise<Client> | undefined;
  private readonly auth: SshAuth;
  private readonly hostName: string;
  private readonly port: number;
  private readonly user: string;
  private readonly knownHostsPath: string;
  private readonly acceptNew: boolean;
  private readonly remote: RemoteEndpoint;
  /** Bound on connecting and on each channel request. */
  readonly connectTimeoutMs: number;
  private readonly keepaliveMs: number;
  private closed = false;
  private current: Client | undefined;
  private readonly patches: Ssh2Patches;

  constructor(private readonly o: SshTransportOptions) {
    const cfg = hostSshConfig({ alias: o.host, configPath: o.sshConfigPath, user: o.user, port: o.port });
    this.hostName = cfg.hostName;
    this.port = o.port ?? cfg.port ?? 22;
    this.user = o.user ?? cfg.user ?? userInfo().username;
    this.knownHostsPath = o.knownHostsPath ?? cfg.userKnownHostsFile?.split(/\s+/)[0] ?? join(homedir(), '.ssh', 'known_hosts');
    this.acceptNew = o.acceptNewHostKey ?? cfg.strictHostKeyChecking === 'accept-new';
    this.remote = o.remote ?? { host: '127.0.0.1', port: 10809 };
    this.connectTimeoutMs = o.connectTimeoutMs ?? (cfg.connectTimeoutSec ? cfg.connectTimeoutSec * 1000 : DEFAULT_CONNECT_TIMEOUT_MS);
    this.keepaliveMs = o.keepaliveIntervalMs ?? (cfg.serverAliveIntervalSec ? cfg.serverAliveIntervalSec * 1000 : 15_000);
    if (cfg.proxyJump || cfg.proxyCommand) {
      log.warn(`~/.ssh/config sets ProxyJump/ProxyCommand for ${o.host}; the built-in ssh2 transport ignores them: use an ssh+cmd:// target to go through OpenSSH`);
    }
    this.auth = new SshAuth({
      username: this.user,
      identityFiles: [...(o.identity ?? []), ...cfg.identityFiles],
      defaultIdentities: cfg.defaultIdentities,
      askPassphrase: o.askPassphrase,
      askPassword: o.askPassword,
      agentSocket: o.agentSocket,
    });
    const where = 'socket' in this.remote ? this.remote.socket : `${this.remote.host}:${this.remote.port}`;
    this.description = o.description ?? `ssh://${this.user}@${this.hostName}${this.port === 22 ? '' : `:${this.port}`} → ${where}`;
    this.patches = new Ssh2Patches(this.description, o.noteTransientBytes);
  }

  async open(): Promise<Duplex> {
    const where = 'socket' in this.remote ? `unix socket ${this.remote.socket}` : `${this.remote.host}:${this.remote.port}`;
    return this.openChannel<ClientChannel>(
      (client, done) => {
        if ('socket' in this.remote) client.openssh_forwardOutStreamLocal(this.remote.socket, done);
        else client.forwardOut('127.0.0.1', 0, this.remote.host, this.remote.port, done);
      },
      (ch) => {
        const access = this.o.channelWindow === 0 ? undefined : this.patches.channelWindow(ch);
        if (access) enlargeReceiveWindow(ch, access, this.o.channelWindow);
      },
      (msg) => `the SSH server could not open a channel to ${where} (${msg}); check that nbd-server listens there and that sshd allows forwarding`,
    );
  }

  /**
   * Opens one raw `sftp` subsystem channel; the SFTP protocol on it is src/sftp's. When
   * the server refuses just this channel (servers cap channels per connection with
   * MaxSessions) the session stays usable and isChannelRefusal() says so.
   */
  async openSftp(): Promise<ClientChannel> {
    return this.openChannel<ClientChannel>(
      (client, done) => client.subsys('sftp', done),
      // Until the SFTP layer adds its listener, an error event would be thrown as uncaught.
      (ch) => {
        ch.on('error', () => undefined);
        const access = this.o.sftpWindow === 0 ? undefined : this.patches.channelWindow(ch);
        if (access) enlargeReceiveWindow(ch, access, this.o.sftpWindow ?? SFTP_WINDOW);
      },
      (msg) => `the SSH server refused the sftp subsystem (${msg}); check that the account may use SFTP`,
    );
  }

  /** Whether an openSftp()/open() error was a refusal of that one channel (the session lives on). */
  static isChannelRefusal(e: unknown): boolean {
    return e instanceof NbdcryptError && (e as NbdcryptError & { channelRefused?: boolean }).channelRefused === true;
  }

  private async openChannel<C extends { destroy(): unknown }>(
    start: (client: Client, done: (err: (Error & { reason?: unknown }) | undefined, ch: C) => void) => void,
    setUp: (ch: C) => void,
    refusal: (message: string) => string,
  ): Promise<C> {
    if (this.closed) throw new NbdcryptError('ECLOSED', `${this.description}: transport closed`);
    const client = await this.getSession();
    return new Promise<C>((resolve, reject) => {
      let settled = false;
      // A half-dead session may never answer CHANNEL_OPEN; keepalives would notice only later.
      const timer = setTimeout(() => {
        settled = true;
        this.dropSession(client);
        reject(new NbdcryptError('ECONNECT', `${this.description}: no answer to a channel request within ${this.connectTimeoutMs} ms`));
      }, this.connectTimeoutMs);
      const done = (err: (Error & { reason?: unknown }) | undefined, ch: C): void => {
        clearTimeout(timer);
        if (settled) {
          ch?.destroy();
          return;
        }
        settled = true;
        if (err) {
          // A channel refusal (err.reason set) leaves the session usable; anything else means it is dead.
          const refused = err.reason !== undefined;
          if (!refused) this.dropSession(client);
          const e = new NbdcryptError('ECONNECT', `${this.description}: ${refusal(err.message)}`, { cause: err });
          if (refused) Object.assign(e, { channelRefused: true });
          reject(e);
          return;
        }
        setUp(ch);
        resolve(ch);
      };
      try {
        start(client, done);
      } catch (e) {
        clearTimeout(timer);
        settled = true;
        this.dropSession(client);
        reject(new NbdcryptError('ECONNECT', `${this.description}: SSH session unusable (${(e as Error).message})`, { cause: e }));
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const s = this.session;
    this.session = undefined;
    if (s) {
      const c = await s.catch(() => undefined);
      c?.end();
    }
  }

  private dropSession(client: Client): void {
    if (this.current === client) {
      this.current = undefined;
      this.session = undefined;
    }
    client.end();
    client.destroy();
  }

  private getSession(): Promise<Client> {
    if (!this.session) {
      const p = this.connect();
      this.session = p;
      p.catch(() => {
        if (this.session === p) this.session = undefined;
      });
    }
    return this.session;
  }

  private connect(): Promise<Client> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let hostKeyError: NbdcryptError | undefined;
      let ready = false;
      const knownText = existsSync(this.knownHostsPath) ? readFileSync(this.knownHostsPath, 'utf8') : '';
      const known = knownKeyTypes(parseKnownHosts(knownText), this.hostName, this.port).flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t]));
      const cfg: ConnectConfig = {
        host: this.hostName,
        port: this.port,
        username: this.user,
        readyTimeout: this.connectTimeoutMs,
        keepaliveInterval: this.keepaliveMs,
        keepaliveCountMax: 3, // OpenSSH's ServerAliveCountMax default
        authHandler: this.auth.handler(),
        algorithms: {
          cipher: (this.o.ciphers ?? DEFAULT_CIPHERS) as never,
          serverHostKey: [...new Set([...known.filter((k) => HOST_KEY_ALGOS.includes(k)), ...HOST_KEY_ALGOS])] as never,
        },
        hostVerifier: (key: Buffer): boolean => {
          try {
            verifyHostKey(key, { knownHostsPath: this.knownHostsPath, host: this.hostName, port: this.port, acceptNew: this.acceptNew, knownText });
            return true;
          } catch (e) {
            hostKeyError = e as NbdcryptError;
            return false;
          }
        },
      };
      client.on('ready', () => {
        ready = true;
        this.current = client;
        // NBD requests are small and latency-bound; ssh2 leaves Nagle on by default.
        client.setNoDelay(true);
        // ssh2's packets and socket reads are garbage within a turn (../transient-buffers.ts).
        this.patches.onReady(client);
        if (this.o.sftpRequest !== false) {
          requestSftpSubsystem(client, (refusal) => {
            if (refusal) log.debug(`${this.description}: sftp subsystem refused (${refusal}); sshd keeps Nagle on, small replies may wait`);
          });
        }
        log.debug(`${this.description}: SSH session up`);
        resolve(client);
      });
      client.on('error', (err: Error & { level?: string }) => {
        // ssh2 reports an agent it cannot use and goes on with the next method by itself.
        if (err.level === 'agent') {
          this.auth.agentFailed(err.message);
          return;
        }
        if (ready) {
          lastError = err.message;
          return;
        }
        reject(this.mapError(err, hostKeyError));
        client.destroy();
      });
      let lastError = '';
      client.on('close', () => {
        // A session we did not end ourselves: say so, so the NBD drop that follows has a cause in the log.
        if (ready && this.current === client && !this.closed) log.warn(`${this.description}: SSH session lost${lastError ? ` (${lastError})` : ''}`);
        if (!ready) reject(new NbdcryptError('ECONNECT', `${this.description}: the SSH connection closed during setup`));
        if (this.current === client) {
          this.current = undefined;
          this.session = undefined;
        }
      });
      client.connect(cfg);
      // One socket write per event-loop turn instead of one per SSH packet (ssh2-internals.ts).
      this.patches.afterConnect(client);
    });
  }

  private mapError(err: Error & { level?: string }, hostKeyError: NbdcryptError | undefined): NbdcryptError {
    if (hostKeyError) return hostKeyError;
    const target = `${this.user}@${this.hostName}:${this.port}`;
    if (err.level === 'client-authentication') {
      this.auth.authFailed();
      const tried = this.auth.tried.length ? this.auth.tried.join(', ') : 'nothing (no agent, no identity file, no password prompt)';
      return new NbdcryptError('EAUTH', `SSH authentication as ${target} failed (tried ${tried}); check the user name and that the key is in the server's authorized_keys`, { cause: err });
    }
    if (err.level === 'client-timeout') {
      return new NbdcryptError('ECONNECT', `cannot reach ${target}: no SSH handshake within ${this.connectTimeoutMs} ms; check the host and port`, { cause: err });
    }
    const code = (err as NodeJS.ErrnoException).code;
    return new NbdcryptError('ECONNECT', `cannot reach ${target}: ${code ?? err.message}; check the host, port and network`, { cause: err });
  }
}
