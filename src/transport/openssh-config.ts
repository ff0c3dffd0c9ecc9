/**
 * The user's OpenSSH client configuration as ssh itself resolves it. `ssh -G` prints the
 * effective settings for a destination after applying everything ssh_config(5) has: the system
 * and user files, `Include`, `Match` (host, originalhost, user, localuser, exec, ...),
 * canonicalisation and the defaults, so the ssh2 transport connects where `ssh HOST` would.
 * Where no OpenSSH client is installed, the built-in parser of ssh-config.ts (Host blocks of
 * one file) is the fallback. `ssh -G` makes no connection; it runs only what a `Match exec`
 * line in the user's own configuration asks for, as ssh would, and is bounded in time.
 */
import { execFileSync } from 'node:child_process';
import { NbdcryptError } from '../errors.js';
import { expandPath, resolveSshConfig, type SshHostConfig } from './ssh-config.js';

export interface HostConfigQuery {
  /** Host as given in the target: an alias the configuration may rename. */
  alias: string;
  /** A configuration file instead of ~/.ssh/config and the system one (`ssh -F`). */
  configPath?: string;
  /** User and port from the target: they take part in `Match user` and token expansion. */
  user?: string;
  port?: number;
}

const SSH_G_TIMEOUT_MS = 10_000;

/** The effective configuration for a destination: `ssh -G` where ssh exists, else the built-in parser. */
export function hostSshConfig(q: HostConfigQuery): SshHostConfig {
  const printed = printEffectiveConfig(q);
  return printed === undefined ? resolveSshConfig(q.alias, q.configPath) : parseEffectiveConfig(printed, q.alias);
}

/** `ssh -G` output, or undefined when there is no ssh to ask. */
function printEffectiveConfig(q: HostConfigQuery): string | undefined {
  const args = ['-G', ...(q.configPath ? ['-F', q.configPath] : []), ...(q.user ? ['-l', q.user] : []), ...(q.port ? ['-p', String(q.port)] : []), '--', q.alias];
  try {
    return execFileSync('ssh', args, { encoding: 'utf8', timeout: SSH_G_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 20 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string; signal?: string };
    if (err.code === 'ENOENT') return undefined;
    const why = err.signal ? `took longer than ${SSH_G_TIMEOUT_MS / 1000} s` : firstLine(err.stderr) ?? err.message;
    throw new NbdcryptError('EUSAGE', `ssh -G ${q.alias}: OpenSSH could not resolve its configuration for this host (${why}); fix the ssh_config file, as ssh itself would refuse it`);
  }
}

function firstLine(s: string | undefined): string | undefined {
  return s?.split('\n').find((l) => l.trim() !== '' && !/^Pseudo-terminal/.test(l))?.trim();
}

/** Maps `ssh -G` lines ("keyword value...", keywords in lower case) onto SshHostConfig. */
export function parseEffectiveConfig(text: string, alias: string): SshHostConfig {
  const values = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(' ');
    if (i <= 0) continue;
    const key = line.slice(0, i);
    values.set(key, [...(values.get(key) ?? []), line.slice(i + 1).trim()]);
  }
  const one = (k: string): string | undefined => values.get(k)?.[0];
  const count = (k: string): number | undefined => {
    const n = Number(one(k));
    return one(k) !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
  };
  const set = (k: string): string | undefined => (one(k) === undefined || one(k)!.toLowerCase() === 'none' ? undefined : one(k));
  const hostName = one('hostname') ?? alias;
  const port = count('port');
  const user = one('user');
  // ssh -G prints IdentityFile as written (tokens unexpanded); ssh expands them at use.
  const tokens = { host: hostName, user: user ?? '', port: port ?? 22, alias };
  return {
    hostName,
    user,
    port: port !== undefined && Number.isInteger(port) && port < 65536 ? port : undefined,
    identityFiles: (values.get('identityfile') ?? []).map((f) => expandPath(f, tokens)),
    // The printed list already holds OpenSSH's defaults when nothing else is configured.
    defaultIdentities: false,
    identitiesOnly: one('identitiesonly') === 'yes',
    userKnownHostsFile: one('userknownhostsfile'),
    strictHostKeyChecking: one('stricthostkeychecking')?.toLowerCase(),
    connectTimeoutSec: count('connecttimeout'),
    serverAliveIntervalSec: count('serveraliveinterval'),
    proxyJump: set('proxyjump'),
    proxyCommand: set('proxycommand'),
  };
}
