/**
 * Process plumbing for `nbdcrypt bench e2e`, kept apart from peers (src must not import
 * test code): find a tool or say which Debian package has it, get a free loopback port, start
 * a long-running helper tracked by PID and stop it, and wait for a condition with a time
 * bound. Every helper the benchmark starts is stopped by its own PID, never by name.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NbdcryptError } from '../../errors.js';
import { findExecutable } from '../environment.js';

/** Absolute path of `name`, or an error naming the Debian package to install. */
export function findTool(name: string, debianPackage: string): string {
  const found = findExecutable(name, (p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (found) return found;
  throw new NbdcryptError('EUSAGE', `bench: '${name}' is not installed; run 'apt-get install ${debianPackage}' and try again`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A fresh directory under `base` (default: the temporary directory), removed by remove(). */
export function scratch(prefix: string, base = tmpdir()): { path: string; remove(): void } {
  const path = mkdtempSync(join(base, prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until true; throws after `timeoutMs` naming `what`. */
export async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new NbdcryptError('ETIMEDOUT', `bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(40);
  }
}

/** True when a TCP connect to host:port succeeds. */
export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Runs a short command to completion (bounded); throws with its stderr on failure. */
export function runTool(cmd: string, args: string[], timeoutMs = 60_000): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n').slice(-3).join(' / ');
    throw new NbdcryptError('EIO', `bench: '${cmd.split('/').pop()} ${args.slice(0, 3).join(' ')} …' failed: ${why}`);
  }
  return r.stdout;
}

/**
 * Like runTool but asynchronous, so an in-process server (nbdcrypt itself) keeps serving
 * while the tool runs; killed after `timeoutMs`.
 */
export function runToolAsync(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-8192)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new NbdcryptError('EIO', `bench: could not run ${cmd}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(out);
      const why = signal ? `killed by ${signal}` : (err || out || `exit ${code}`).trim().split('\n').slice(-3).join(' / ');
      reject(new NbdcryptError('EIO', `bench: '${cmd.split('/').pop()} ${args.slice(0, 3).join(' ')} …' failed: ${why}`));
    });
  });
}

export interface Helper {
  readonly pid: number;
  readonly child: ChildProcess;
  stderr(): string;
  exited(): boolean;
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
  stop(): Promise<void>;
}

/** Starts a long-running helper process; its stderr is kept (last 8 KiB) for error messages. */
export function startHelper(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Helper {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(env ? { env } : {}) });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-8192)));
  let done = false;
  const gone = new Promise<void>((resolve) => {
    child.once('exit', () => ((done = true), resolve()));
    child.once('error', (e) => ((done = true), (err += e.message), resolve()));
  });
  return {
    pid: child.pid ?? -1,
    child,
    stderr: () => err,
    exited: () => done,
    stop: async () => {
      if (done) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(t);
    },
  };
}
