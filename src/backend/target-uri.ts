/**
 * Parses remote TARGET URIs, following the NBD URI conventions (docs/formats.md, NBD URIs)
 * and extending them with SSH:
 *   nbd://host[:port]/export                     plain TCP (port 10809 by default)
 *   nbd+unix:///export?socket=PATH               unix socket on this machine
 *   ssh://[user@]host[:port]/export[?nbd=HOST:PORT|socket=PATH]
 *                                                ssh2 channel to the remote nbd-server
 *                                                (default 127.0.0.1:10809 on the remote)
 *   ssh+cmd://[user@]host[:port]/export[?...]    the same through OpenSSH's `ssh -W`
 *                                                (ProxyJump, ControlMaster, …)
 *   sftp://[user@]host[:port]/PATH               the image as a file on an SFTP server:
 *                                                PATH as the server sees it (a chrooted
 *                                                account sees its chroot); /~/PATH is
 *                                                relative to the login directory
 * The export name is the URI path without its leading slash, percent-decoded. A password in
 * the URI is refused: it would end up in shell history and process lists.
 */
import { NbdcryptError } from '../errors.js';
import { DEFAULT_PORT } from '../nbd/protocol.js';
import type { RemoteEndpoint } from '../transport/ssh.js';

export type RemoteTarget =
  | { kind: 'nbd'; host: string; port: number; exportName: string }
  | { kind: 'nbd+unix'; socket: string; exportName: string }
  | { kind: 'ssh' | 'ssh+cmd'; user?: string; host: string; port?: number; exportName: string; remote: RemoteEndpoint }
  | { kind: 'sftp'; user?: string; host: string; port?: number; path: string };

const schemes = ['nbd:', 'nbd+unix:', 'ssh:', 'ssh+cmd:', 'sftp:'];

export function isRemoteTargetUri(spec: string): boolean {
  return schemes.some((s) => spec.startsWith(`${s}//`));
}

function usage(spec: string, why: string): NbdcryptError {
  return new NbdcryptError('EUSAGE', `target '${spec}': ${why}; expected nbd://host[:port]/export, nbd+unix:///export?socket=PATH, ssh://[user@]host[:port]/export[?nbd=HOST:PORT|socket=PATH] or sftp://[user@]host[:port]/PATH`);
}

function parsePort(s: string, spec: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1 || n > 65535) throw usage(spec, `bad port '${s}'`);
  return n;
}

function stripBrackets(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

/** Parses HOST:PORT, [V6]:PORT or HOST (port 10809). */
function parseHostPort(s: string, spec: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(s);
  if (!m) throw usage(spec, `bad nbd address '${s}'`);
  return { host: stripBrackets(m[1]!), port: m[2] ? parsePort(m[2], spec) : DEFAULT_PORT };
}

export function parseTargetUri(spec: string): RemoteTarget {
  let u: URL;
  try {
    u = new URL(spec);
  } catch {
    throw usage(spec, 'not a valid URI');
  }
  if (u.password) throw usage(spec, 'passwords in target URIs are refused (they leak into shell history); you will be prompted');
  const exportName = decodeURIComponent(u.pathname.replace(/^\//, ''));
  const q = u.searchParams;
  for (const k of q.keys()) if (!['socket', 'nbd'].includes(k)) throw usage(spec, `unknown query parameter '${k}'`);
  switch (u.protocol) {
    case 'nbd:':
      if (!u.hostname) throw usage(spec, 'missing host');
      if (q.size) throw usage(spec, 'nbd:// takes no query parameters');
      return { kind: 'nbd', host: stripBrackets(u.hostname), port: u.port ? parsePort(u.port, spec) : DEFAULT_PORT, exportName };
    case 'nbd+unix:': {
      const socket = q.get('socket');
      if (!socket) throw usage(spec, 'nbd+unix:// needs ?socket=PATH');
      if (u.hostname) throw usage(spec, 'nbd+unix:// takes no host (use three slashes)');
      return { kind: 'nbd+unix', socket, exportName };
    }
    case 'ssh:':
    case 'ssh+cmd:': {
      if (!u.hostname) throw usage(spec, 'missing host');
      if (q.has('socket') && q.has('nbd')) throw usage(spec, 'give either nbd= or socket=, not both');
      const socket = q.get('socket');
      const nbd = q.get('nbd');
      const remote: RemoteEndpoint = socket ? { socket } : nbd ? parseHostPort(nbd, spec) : { host: '127.0.0.1', port: DEFAULT_PORT };
      return {
        kind: u.protocol === 'ssh:' ? 'ssh' : 'ssh+cmd',
        user: u.username ? decodeURIComponent(u.username) : undefined,
        host: stripBrackets(u.hostname),
        port: u.port ? parsePort(u.port, spec) : undefined,
        exportName,
        remote,
      };
    }
    case 'sftp:':
      return parseSftp(u, spec);
    default:
      throw usage(spec, `unknown scheme '${u.protocol}'`);
  }
}

/** sftp://: the path as the server resolves it; `/~/` (or `/~`) stands for the login directory. */
function parseSftp(u: URL, spec: string): RemoteTarget {
  if (!u.hostname) throw usage(spec, 'missing host');
  if (u.search) throw usage(spec, 'sftp:// takes no query parameters');
  const full = decodeURIComponent(u.pathname);
  const path = full.startsWith('/~/') ? full.slice(3) : full;
  if (path === '' || path === '/' || path.endsWith('/') || full === '/~') throw usage(spec, 'sftp:// needs the path of the image file');
  return {
    kind: 'sftp',
    user: u.username ? decodeURIComponent(u.username) : undefined,
    host: stripBrackets(u.hostname),
    port: u.port ? parsePort(u.port, spec) : undefined,
    path,
  };
}
