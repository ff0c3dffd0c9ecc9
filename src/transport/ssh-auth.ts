/**
 * SSH user authentication in OpenSSH's order: keys offered by ssh-agent (its socket given),
 * then identity files (from the command line, ~/.ssh/config, then the default
 * ~/.ssh/id_ed25519, id_ecdsa, id_rsa), asking for an encrypted key's passphrase through a
 * callback, then a password through a callback. Decrypted keys and a password that worked
 * are kept in memory so a reconnect never prompts again. Produces an ssh2 `authHandler`.
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
  private readonly keys = new Map<string, ParsedKey | null>();
  private password: string | undefined;
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

  /** Loads (and caches) a private key, asking for its passphrase if it is encrypted. */
  private async loadKey(path: string): Promise<ParsedKey | null> {
    if (this.keys.has(path)) return this.keys.get(path)!;
    let key: ParsedKey | null = null;
    try {
      const data = readFileSync(path);
      let parsed = utils.parseKey(data);
      for (let tries = 0; parsed instanceof Error && /passphrase|encrypted/i.test(parsed.message) && this.o.askPassphrase && tries < 3; tries++) {
        const pass = await this.o.askPassphrase(path);
        if (pass === undefined) break;
        parsed = utils.parseKey(data, pass);
        if (parsed instanceof Error) log.warn(`could not decrypt ${path}: wrong passphrase?`);
      }
      if (parsed instanceof Error) log.debug(`skipping identity ${path}: ${parsed.message}`);
      else key = Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
    } catch (e) {
      log.debug(`skipping identity ${path}: ${(e as Error).message}`);
    }
    this.keys.set(path, key);
    return key;
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
          const key = await this.loadKey(s.path);
          if (!key) continue;
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
