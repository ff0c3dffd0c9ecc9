/**
 * bench/bare-channel-nbd against a real sshd, driven by nbdcopy: what is written reaches the
 * remote `cat > /dev/null` (its read count grows by the bytes written), what is read is the
 * remote `cat /dev/zero`, and SIGTERM stops it cleanly. The bench's fairness row rests on
 * this path moving every byte through the bare channels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nbdcopy } from '../../peers/nbdcopy.js';
import { startSshd } from '../../peers/sshd.js';
import { requireTool, scratchDir, startProcess, waitFor } from '../../peers/tools.js';

const script = join(process.cwd(), 'dist', 'bench', 'bare-channel-nbd.js');
const MiB = 1024 * 1024;

function stdoutOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/fd/1`);
  } catch {
    return 'gone';
  }
}

function bytesRead(pid: number): number {
  return Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
}

test('bench/bare-channel-nbd: writes reach the remote cat, reads are its zeroes, SIGTERM exits 0', async () => {
  requireTool('nbdcopy', 'libnbd-bin');
  const dir = scratchDir();
  const sshd = await startSshd();
  const sock = join(dir.path, 'bare.sock');
  const bare = startProcess(process.execPath, [script, '--port', String(sshd.port), '--user', sshd.user, '--key', sshd.userKey, '--socket', sock, '--size', '16M']);
  try {
    await waitFor('the listening line', () => bare.stdout().includes(`listening on unix:${sock}`), 30_000);
    // The sink is the remote `cat` whose standard output is /dev/null; sshd starts the
    // commands just after it confirms the channels.
    const sinkPid = (): number | undefined => sshd.connectionProcesses('cat').find((pid) => stdoutOf(pid) === '/dev/null');
    await waitFor('the remote cat > /dev/null', () => sinkPid() !== undefined, 10_000).catch(() =>
      assert.fail(`no remote cat writing to /dev/null among ${sshd.connectionProcesses('cat').map((pid) => `${pid}: ${stdoutOf(pid)}`).join(', ') || 'no cat'}`),
    );
    const sink = sinkPid()!;
    const before = bytesRead(sink);
    const src = join(dir.path, 'src.bin');
    writeFileSync(src, randomBytes(16 * MiB));
    const uri = `nbd+unix:///disk?socket=${sock}`;
    nbdcopy(src, uri, { connections: 1, requests: 16, timeoutMs: 60_000 });
    // The last packets may still be on their way to the remote cat when nbdcopy is done.
    const grown = (): number => bytesRead(sink) - before;
    await waitFor('the sink cat to read the 16 MiB written', () => grown() >= 16 * MiB, 10_000).catch(() => assert.fail(`the sink cat read ${grown()} bytes, not the 16 MiB written`));
    const out = join(dir.path, 'out.bin');
    nbdcopy(uri, out, { connections: 1, requests: 16, timeoutMs: 60_000 });
    const back = readFileSync(out);
    assert.equal(back.length, 16 * MiB);
    assert.ok(back.equals(Buffer.alloc(16 * MiB)), 'reads come from /dev/zero');
    bare.child.kill('SIGTERM');
    assert.equal(await bare.exited, 0, bare.stderr());
  } finally {
    await bare.stop();
    await sshd.stop();
    dir.remove();
  }
});
