/**
 * Listener specs: `unix:PATH` or `tcp:HOST:PORT` (IPv6 as `tcp:[::1]:PORT`, port 0 = any free
 * one). The plaintext NBD socket is private by design (DESIGN.md "Data path rules"): unix
 * sockets are chmod 0600 and TCP must be loopback unless the caller explicitly allows any.
 */
import { chmod, lstat } from 'node:fs/promises';
import { isIP } from 'node:net';
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
  if (spec.kind === 'unix') {
    const existing = await lstat(spec.path).catch(() => undefined);
    if (existing) {
      throw new NbdcryptError('EEXIST', `cannot listen on ${spec.path}: the path already exists; remove it or choose another path`);
    }
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(new NbdcryptError('EUSAGE', `cannot listen on ${formatAddress(spec)}: ${e.message}`, { cause: e }));
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
