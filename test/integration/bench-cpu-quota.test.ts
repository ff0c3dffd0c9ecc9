/**
 * peers/cpu-quota.ts: a process moved into the quota, and the child it forks afterwards, get
 * together no more than their share of a CPU; removing the quota puts what is left back and
 * deletes the group.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createCpuQuota } from '../../peers/cpu-quota.js';

const TICKS_PER_SECOND = 100;

/** utime + stime of `pid` and of its reaped children, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  return (f[11]! + f[12]! + f[13]! + f[14]!) / TICKS_PER_SECOND;
}

test('a CPU quota of 20 % holds a busy process and the child it forks to a fifth of a CPU', async () => {
  const quota = createCpuQuota(20);
  // The shell is moved first, then forks one busy child and spins itself: two busy processes.
  const sh = spawn('sh', ['-c', 'read go; (while :; do :; done) & while :; do :; done'], { stdio: ['pipe', 'ignore', 'ignore'] });
  try {
    quota.add(sh.pid!);
    sh.stdin.write('go\n');
    const start = Date.now();
    await new Promise((r) => setTimeout(r, 2000));
    const child = readFileSync(`/proc/${sh.pid}/task/${sh.pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
    assert.equal(child.length, 1, 'the shell forked its busy child');
    const used = cpuSeconds(sh.pid!) + cpuSeconds(child[0]!);
    const elapsed = (Date.now() - start) / 1000;
    // Unlimited, the two would use up to 2 CPUs (at least one on any machine); 0.2 allowed.
    assert.ok(used < 0.45 * elapsed, `${used.toFixed(2)} CPU-s in ${elapsed.toFixed(1)} s under a 20 % quota`);
    assert.ok(used > 0.05 * elapsed, `${used.toFixed(2)} CPU-s in ${elapsed.toFixed(1)} s: the quota starved the processes`);
    process.kill(child[0]!, 'SIGKILL');
  } finally {
    sh.kill('SIGKILL');
    await new Promise((r) => (sh.exitCode !== null || sh.signalCode !== null ? r(undefined) : sh.once('exit', r)));
    quota.remove();
  }
  assert.ok(!existsSync(quota.path), 'the group is gone');
});

test('a CPU quota outside 1-100 % is refused with a one-line usage error', () => {
  assert.throws(() => createCpuQuota(0), /--remote-cpu-percent 0 must be between 1 and 100/);
  assert.throws(() => createCpuQuota(Number('x')), /must be between 1 and 100/);
});
