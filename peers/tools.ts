/**
 * Shared plumbing for tests that start real peers: find a tool (a missing tool is a test
 * failure, never a silent skip), get a free loopback port, start a process and stop it by
 * PID, wait for a condition with a time bound, make a scratch directory.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// The shipped bench's (src/cli/bench/e2e-procs.ts): one copy for both.
import { canConnect, freePort, sleep } from '../src/cli/bench/e2e-procs.js';

export { canConnect, freePort, sleep };

const sbinPaths = ['/usr/sbin', '/sbin', '/usr/local/sbin'];

/** Absolute path of a tool, or throws with the Debian package that provides it. */
export function requireTool(name: string, debianPackage: string): string {
  for (const dir of (process.env.PATH ?? '').split(':').concat(sbinPaths)) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here; try the next directory
    }
  }
  throw new Error(`required tool '${name}' is missing: apt-get install ${debianPackage} (.ci/run installs it)`);
}

export function scratchDir(prefix = 'nbdcrypt-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Polls `cond` every `intervalMs` until it returns true; throws after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop: (graceMs?: number) => Promise<void>;
}

/** Starts a long-running process; its output is collected for error messages. */
export function startProcess(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      exitCode = code;
      resolve(code);
    });
    child.on('error', () => {
      exitCode = null;
      resolve(null);
    });
  });
  const stop = async (graceMs = 5000): Promise<void> => {
    if (exitCode !== undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return { child, pid: child.pid ?? -1, stdout: () => out, stderr: () => err, exited, stop };
}

/** Runs a command to completion (bounded in time) and returns its output; throws on failure. */
export function run(cmd: string, args: string[], opts: { input?: string | Buffer; timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv; allowFail?: boolean } = {}): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(cmd, args, {
    input: opts.input,
    timeout: opts.timeoutMs ?? 120_000,
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    maxBuffer: 256 * 1024 * 1024,
  });
  const res = { stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '', status: r.status };
  if (!opts.allowFail && r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (status ${r.status}${r.error ? `, ${r.error.message}` : ''}): ${res.stderr.trim()}`);
  }
  return res;
}
