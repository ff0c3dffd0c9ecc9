/**
 * qemu-io as a scripted NBD client: each `-c` command runs in order on one connection; pattern
 * reads (`read -P 0xab OFF LEN`) verify data. Pattern mismatches are detected from the output
 * because qemu-io exits 0 on them. Spec: qemu-io(1).
 */
import { execFile } from 'node:child_process';
import { requireTool, run } from './tools.js';

export function qemuIo(uri: string, commands: string[], opts: { allowFail?: boolean } = {}): { status: number | null; stdout: string; stderr: string } {
  const bin = requireTool('qemu-io', 'qemu-utils');
  const args = ['-f', 'raw', ...commands.flatMap((c) => ['-c', c]), uri];
  const r = run(bin, args, { timeoutMs: 120_000, allowFail: true });
  const out = r.stdout + r.stderr;
  const failed = r.status !== 0 || /Pattern verification failed|failed:|error/i.test(out);
  if (failed && !opts.allowFail) throw new Error(`qemu-io ${commands.map((c) => `-c '${c}'`).join(' ')} failed (status ${r.status}):\n${out.trim()}`);
  return r;
}

/**
 * The same without blocking this process (so a server running in it keeps serving): resolves
 * with qemu-io's output, rejects if it fails or takes longer than `timeoutMs`.
 */
export function qemuIoAsync(uri: string, commands: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const bin = requireTool('qemu-io', 'qemu-utils');
  const args = ['-f', 'raw', ...commands.flatMap((c) => ['-c', c]), uri];
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: opts.timeoutMs ?? 120_000 }, (err, stdout, stderr) => {
      const out = `${stdout}${stderr}`;
      if (err || /Pattern verification failed|failed:|error/i.test(out)) {
        reject(new Error(`qemu-io ${commands.map((c) => `-c '${c}'`).join(' ')} failed (${err ? err.message : 'error in output'}):\n${out.trim()}`));
      } else resolve(out);
    });
  });
}
