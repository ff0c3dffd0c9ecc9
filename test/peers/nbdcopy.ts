/**
 * libnbd's nbdcopy: bulk copies between files and NBD URIs with several connections and many
 * requests in flight, the heaviest well-behaved client we have. Spec: nbdcopy(1).
 */
import { requireTool, run } from './tools.js';

export function nbdcopy(src: string, dst: string, opts: { connections?: number; requests?: number; extra?: string[]; timeoutMs?: number } = {}): void {
  const bin = requireTool('nbdcopy', 'libnbd-bin');
  const args = [`--connections=${opts.connections ?? 4}`, `--requests=${opts.requests ?? 64}`, ...(opts.extra ?? []), src, dst];
  run(bin, args, { timeoutMs: opts.timeoutMs ?? 300_000 });
}
