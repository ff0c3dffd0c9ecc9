/**
 * libnbd's nbdcopy: bulk copies between files and NBD URIs with several connections and many
 * requests in flight, the heaviest well-behaved client we have. Spec: nbdcopy(1).
 */
import { execFile } from 'node:child_process';
import { requireTool, run } from './tools.js';

export interface NbdcopyOptions {
  connections?: number;
  requests?: number;
  /** Further options, placed before the source. */
  extra?: string[];
  timeoutMs?: number;
}

/** `src` may be several arguments: nbdcopy's `[ CMD ARGS ]` source. */
function nbdcopyArgs(src: string | string[], dst: string, opts: NbdcopyOptions): string[] {
  return [`--connections=${opts.connections ?? 4}`, `--requests=${opts.requests ?? 64}`, ...(opts.extra ?? []), ...[src].flat(), dst];
}

export function nbdcopy(src: string, dst: string, opts: NbdcopyOptions = {}): void {
  run(requireTool('nbdcopy', 'libnbd-bin'), nbdcopyArgs(src, dst, opts), { timeoutMs: opts.timeoutMs ?? 300_000 });
}

/**
 * The same without blocking this process (so a server running in it keeps serving): resolves
 * with the seconds the copy took.
 */
export function nbdcopyAsync(src: string | string[], dst: string, opts: NbdcopyOptions = {}): Promise<number> {
  const args = nbdcopyArgs(src, dst, opts);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    execFile(requireTool('nbdcopy', 'libnbd-bin'), args, { timeout: opts.timeoutMs ?? 300_000 }, (err, _stdout, stderr) =>
      err ? reject(new Error(`nbdcopy ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`)) : resolve((performance.now() - t0) / 1000),
    );
  });
}
