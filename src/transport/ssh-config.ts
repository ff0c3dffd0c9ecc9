/**
 * The fallback reader of ~/.ssh/config, for machines without an OpenSSH client (where there
 * is one, openssh-config.ts asks `ssh -G` instead). The subset it honours: `Host` blocks (patterns with
 * `*`/`?` wildcards and `!` negation, matched against the name given on the command line),
 * HostName, User, Port, IdentityFile (all of them, in order), IdentitiesOnly,
 * UserKnownHostsFile, StrictHostKeyChecking, ConnectTimeout, ServerAliveInterval, and
 * ProxyJump/ProxyCommand (reported so the caller can suggest the ssh-command transport).
 * As in OpenSSH the first value obtained for a keyword wins. `Match` blocks and `Include`
 * are not evaluated (their lines are skipped). We parse it ourselves rather than use npm
 * `ssh-config`: the subset is small and token expansion must match ssh_config(5) exactly.
 * Spec: ssh_config(5).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { matchPatternList } from './known-hosts.js';

export interface SshHostConfig {
  /** The real host name to connect to (HostName, else the alias). */
  hostName: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  /** Whether OpenSSH's default key files are tried after identityFiles. */
  defaultIdentities: boolean;
  identitiesOnly: boolean;
  userKnownHostsFile?: string;
  strictHostKeyChecking?: string;
  connectTimeoutSec?: number;
  serverAliveIntervalSec?: number;
  proxyJump?: string;
  proxyCommand?: string;
}

interface Block {
  patterns: string[] | 'all' | 'never';
  options: [string, string[]][];
}

/** Splits a config line into keyword and arguments (handles `Key=value` and double quotes). */
function tokenize(line: string): [string, string[]] | undefined {
  const t = line.trim();
  if (t === '' || t.startsWith('#')) return undefined;
  const m = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(t);
  if (!m) return [t.toLowerCase(), []];
  const args: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let a = re.exec(m[2]!); a; a = re.exec(m[2]!)) args.push(a[1] ?? a[2]!);
  return [m[1]!.toLowerCase(), args];
}

export function parseSshConfig(text: string): Block[] {
  const blocks: Block[] = [{ patterns: 'all', options: [] }];
  for (const line of text.split('\n')) {
    const tok = tokenize(line);
    if (!tok) continue;
    const [key, args] = tok;
    if (key === 'host') blocks.push({ patterns: args, options: [] });
    else if (key === 'match') blocks.push({ patterns: 'never', options: [] });
    else blocks[blocks.length - 1]!.options.push([key, args]);
  }
  return blocks;
}

/** Expands `~` and the common %-tokens of ssh_config(5) "TOKENS". */
export function expandPath(p: string, t: { host: string; user: string; port: number; alias: string }): string {
  const home = homedir();
  let s = p.startsWith('~/') || p === '~' ? home + p.slice(1) : p;
  s = s.replace(/%([%hdpruinCL])/g, (_, c: string) => {
    switch (c) {
      case '%':
        return '%';
      case 'h':
        return t.host;
      case 'n':
        return t.alias;
      case 'd':
        return home;
      case 'p':
        return String(t.port);
      case 'r':
        return t.user;
      case 'u':
      case 'i':
        return c === 'u' ? userInfo().username : String(userInfo().uid);
      default:
        return `%${c}`;
    }
  });
  return s;
}

/** Resolves the options for `alias` from a config file (missing file = defaults). */
export function resolveSshConfig(alias: string, configPath = join(homedir(), '.ssh', 'config')): SshHostConfig {
  const text = existsSync(configPath) ? readFileSync(configPath, 'utf8') : '';
  const first = new Map<string, string[]>();
  const identityFiles: string[] = [];
  for (const b of parseSshConfig(text)) {
    const applies = b.patterns === 'all' || (b.patterns !== 'never' && matchPatternList(b.patterns, alias));
    if (!applies) continue;
    for (const [key, args] of b.options) {
      if (key === 'identityfile') identityFiles.push(...args.slice(0, 1));
      else if (!first.has(key)) first.set(key, args);
    }
  }
  const one = (k: string): string | undefined => first.get(k)?.[0];
  const hostName = (one('hostname') ?? alias).replace(/%h/g, alias);
  const port = one('port') !== undefined ? Number(one('port')) : undefined;
  const user = one('user');
  const tokens = { host: hostName, user: user ?? userInfo().username, port: port ?? 22, alias };
  const num = (k: string): number | undefined => (one(k) !== undefined && Number.isFinite(Number(one(k))) ? Number(one(k)) : undefined);
  return {
    hostName,
    user,
    port: port !== undefined && Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined,
    identityFiles: identityFiles.map((f) => expandPath(f, tokens)),
    defaultIdentities: one('identitiesonly')?.toLowerCase() !== 'yes',
    identitiesOnly: one('identitiesonly')?.toLowerCase() === 'yes',
    userKnownHostsFile: one('userknownhostsfile') !== undefined ? expandPath(one('userknownhostsfile')!, tokens) : undefined,
    strictHostKeyChecking: one('stricthostkeychecking')?.toLowerCase(),
    connectTimeoutSec: num('connecttimeout'),
    serverAliveIntervalSec: num('serveraliveinterval'),
    proxyJump: one('proxyjump') !== undefined && one('proxyjump')!.toLowerCase() !== 'none' ? first.get('proxyjump')!.join(' ') : undefined,
    proxyCommand: one('proxycommand') !== undefined && one('proxycommand')!.toLowerCase() !== 'none' ? first.get('proxycommand')!.join(' ') : undefined,
  };
}
