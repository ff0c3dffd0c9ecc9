/**
 * Listener specs: `unix:PATH` or `tcp:HOST:PORT` (IPv6 as `tcp:[::1]:PORT`, port 0 = any free
 * one). The plaintext NBD socket is private by design (docs/security.md): unix
 * sockets are chmod 0600 and TCP must be loopback unless the caller explicitly allows any. A
 * socket file left by a server that was killed is removed; anything else at the path is refused.
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect, isIP } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { NbdcryptError } from '../errors.js';

export type ListenSpec = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export function parseListenSpec(spec: string): ListenSpec {
  if (spec.startsWith('unix:')) {
    const path = spec.slice(5);
    if (path === '') throw new NbdcryptError('EUSAGE', `listen address '${spec}' has an empty socket path; use unix:/path/to/nbd.sock`);
    return { kind: 'unix', path };
  }
  if (spec.startsWith('tcp:')) {
    const rest = spec.slice(4);
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(rest);
    const port = m ? Number(m[3]) : NaN;
    if (!m || port > 65535) {
      throw new NbdcryptError('EUSAGE', `listen address '${spec}' is not tcp:HOST:PORT (IPv6: tcp:[::1]:PORT)`);
    }
    return { kind: 'tcp', host: m[1] ?? m[2]!, port };
  }
  throw new NbdcryptError('EUSAGE', `listen address '${spec}' must start with unix: or tcp:`);
}

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}

export function formatAddress(spec: ListenSpec): string {
  if (spec.kind === 'unix') return `unix:${spec.path}`;
  return spec.host.includes(':') ? `tcp:[${spec.host}]:${spec.port}` : `tcp:${spec.host}:${spec.port}`;
}

/** Binds `server` to `spec`; resolves with the address actually bound (port 0 resolved). */
export async function bind(server: Server, spec: ListenSpec, opts: { listenAny?: boolean } = {}): Promise<string> {
  if (spec.kind === 'tcp' && !opts.listenAny && !isLoopbackHost(spec.host)) {
    throw new NbdcryptError(
      'EUSAGE',
      `refusing to serve plaintext NBD on non-loopback address ${spec.host}: anyone who can reach it reads the disk; use 127.0.0.1 or pass --listen-any`,
    );
  }
  if (spec.kind === 'unix') await clearStaleSocket(spec.path);
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(new NbdcryptError('ELISTEN', `cannot listen on ${formatAddress(spec)}: ${e.message}`, { cause: e }));
    server.once('error', onError);
    const done = () => {
      server.off('error', onError);
      resolve();
    };
    if (spec.kind === 'unix') server.listen(spec.path, done);
    else server.listen(spec.port, spec.host, done);
  });
  if (spec.kind === 'unix') {
    await chmod(spec.path, 0o600);
    return formatAddress(spec);
  }
  const addr = server.address() as AddressInfo;
  return formatAddress({ kind: 'tcp', host: spec.host, port: addr.port });
}

/** Removes a socket file at `path` that nobody answers on; refuses a live socket or a non-socket. */
async function clearStaleSocket(path: string): Promise<void> {
  const existing = await lstat(path).catch(() => undefined);
  if (!existing) return;
  if (!existing.isSocket()) {
    throw new NbdcryptError('ELISTEN', `cannot listen on ${path}: it exists and is not a socket; remove it or choose another path`);
  }
  if (await answers(path)) {
    throw new NbdcryptError('ELISTEN', `cannot listen on ${path}: another server is listening there; stop it first or choose another path`);
  }
  await unlink(path);
}

/** Whether something accepts a connection on the unix socket `path` (within 2 s). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (alive: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(alive);
    };
    const timer = setTimeout(() => done(true), 2000); // a listener too busy to accept is still alive
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
