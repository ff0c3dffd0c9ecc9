/**
 * SSH user authentication in OpenSSH's order: keys offered by ssh-agent (its socket given),
 * then identity files (from the command line, ~/.ssh/config, then the default
 * ~/.ssh/id_ed25519, id_ecdsa, id_rsa), asking for an encrypted key's passphrase through a
 * callback, then a password through a callback. Decrypted keys and a password that worked
 * are kept in memory so a reconnect never prompts again. Produces an ssh2 `authHandler`.
 * As in OpenSSH, a method that cannot be used (an agent socket nobody answers on, an identity
 * file in a format we cannot read, an encrypted key without its passphrase) is reported in
 * one warning naming it and why, and authentication goes on with the next method.
 * See docs/formats.md (SSH) and ssh(1) "AUTHENTICATION".
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type AnyAuthMethod, type AuthHandlerMiddleware, type AuthenticationType, type ParsedKey } from 'ssh2';

const { utils } = ssh2;
import { log } from '../log.js';

export interface SshAuthOptions {
  username: string;
  /** Identity files to try, in order (explicit ones first). Missing files are skipped. */
  identityFiles?: string[];
  /** Add ~/.ssh/id_ed25519, id_ecdsa, id_rsa after the given ones (unless IdentitiesOnly). */
  defaultIdentities?: boolean;
  askPassphrase?: (keyPath: string) => Promise<string | undefined>;
  askPassword?: (prompt: string) => Promise<string | undefined>;
  /** ssh-agent socket (the CLI passes SSH_AUTH_SOCK); none: no agent. */
  agentSocket?: string;
}

type Step = { kind: 'agent'; sock: string } | { kind: 'key'; path: string } | { kind: 'password' };

export function defaultIdentityFiles(): string[] {
  return ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((n) => join(homedir(), '.ssh', n));
}

export class SshAuth {
  private readonly keys = new Map<string, ParsedKey>();
  /** Identity files that could not be used, with why (not retried on reconnect). */
  private readonly unusable = new Map<string, string>();
  private password: string | undefined;
  /** Warnings already given (a reconnect does not repeat them). */
  private readonly warned = new Set<string>();
  /** What the last attempt tried, for the EAUTH message (no secrets). */
  tried: string[] = [];

  constructor(private readonly o: SshAuthOptions) {}

  private steps(): Step[] {
    const steps: Step[] = [];
    const sock = this.o.agentSocket;
    if (sock) steps.push({ kind: 'agent', sock });
    const files = [...(this.o.identityFiles ?? []), ...(this.o.defaultIdentities === false ? [] : defaultIdentityFiles())];
    for (const path of [...new Set(files)]) if (existsSync(path)) steps.push({ kind: 'key', path });
    if (this.o.askPassword) steps.push({ kind: 'password' });
    return steps;
  }

  private warnOnce(msg: string): void {
    if (this.warned.has(msg)) return;
    this.warned.add(msg);
    log.warn(msg);
  }

  /** Loads (and caches) a private key, asking for its passphrase if it is encrypted; null with the reason when it cannot be used. */
  private async loadKey(path: string): Promise<{ key: ParsedKey | null; why?: string }> {
    const cached = this.keys.get(path);
    if (cached) return { key: cached };
    const known = this.unusable.get(path);
    if (known) return { key: null, why: known };
    let why: string;
    try {
      const data = readFileSync(path);
      let parsed = utils.parseKey(data);
      const encrypted = parsed instanceof Error && /passphrase|encrypted/i.test(parsed.message);
      let asked = false;
      for (let tries = 0; parsed instanceof Error && encrypted && this.o.askPassphrase && tries < 3; tries++) {
        const pass = await this.o.askPassphrase(path);
        if (pass === undefined) break;
        asked = true;
        parsed = utils.parseKey(data, pass);
        if (parsed instanceof Error) log.warn(`could not decrypt ${path}: wrong passphrase?`);
      }
      if (!(parsed instanceof Error)) {
        const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
        if (key.isPrivateKey()) {
          this.keys.set(path, key);
          return { key };
        }
      }
      why = !(parsed instanceof Error)
        ? 'it holds a public key; give the private key file (the one without .pub)'
        : !encrypted
        ? `not a private key nbdcrypt can read (${parsed.message}); give an OpenSSH or PEM private key`
        : asked
          ? 'it is encrypted and the passphrase given did not decrypt it'
          : 'it is encrypted and no passphrase was given (no terminal to ask on, or an empty answer); load it into ssh-agent or run where you can type it';
    } catch (e) {
      why = `cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
    }
    this.unusable.set(path, why);
    this.warnOnce(`identity file ${path} cannot be used: ${why}; trying the next authentication method`);
    return { key: null, why };
  }

  /**
   * ssh2 could not use the agent (socket gone, nobody answering): like OpenSSH, one warning
   * and on to the next method. ssh2 itself moves on; this only reports it.
   */
  agentFailed(why: string): void {
    const sock = this.o.agentSocket ?? '';
    const i = this.tried.indexOf('ssh-agent');
    if (i >= 0) this.tried[i] = `ssh-agent (unusable: ${why})`;
    this.warnOnce(`ssh-agent at ${sock} (SSH_AUTH_SOCK) cannot be used: ${why}; trying the next authentication method`);
  }

  /** A fresh ssh2 authHandler for one connection attempt. */
  handler(): AuthHandlerMiddleware {
    const steps = this.steps();
    this.tried = [];
    const username = this.o.username;
    const stop = false as unknown as AuthenticationType;
    const nextStep = async (): Promise<AnyAuthMethod | AuthenticationType> => {
      for (;;) {
        const s = steps.shift();
        if (!s) return stop;
        if (s.kind === 'agent') {
          this.tried.push('ssh-agent');
          return { type: 'agent', username, agent: s.sock };
        }
        if (s.kind === 'key') {
          const { key, why } = await this.loadKey(s.path);
          if (!key) {
            this.tried.push(`key ${s.path} (unusable: ${why})`);
            continue;
          }
          this.tried.push(`key ${s.path}`);
          return { type: 'publickey', username, key };
        }
        const pw = this.password ?? (await this.o.askPassword!(`password for ${username}: `));
        if (pw === undefined) return stop;
        this.tried.push('password');
        this.password = pw;
        return { type: 'password', username, password: pw };
      }
    };
    return (_left, _partial, next) => {
      nextStep().then(next, () => next(stop));
    };
  }

  /** Forgets a password that did not work (a key is kept: it may work elsewhere). */
  authFailed(): void {
    this.password = undefined;
  }
}
