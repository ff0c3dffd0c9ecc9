/**
 * The benchmarks' CPU pinning: the default split (first allowed CPU local, second remote),
 * 'off', explicit lists and their validation; and, on this machine's real scheduler, that a
 * process started through pinnedCommand runs on the asked CPU and so do the children it
 * forks afterwards (as sshd's sessions and nbd-server's forks do). Needs two CPUs, as the
 * pinning itself does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { allowedCpus, describePinning, parsePinning, pinnedCommand, pinSelf } from '../../../src/cli/bench/cpu-pinning.js';
import { requireTool, waitFor } from '../../../peers/tools.js';

const cpusOf = (pid: number | string): string => /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;

test('parsePinning: default split, off, explicit lists, refused spellings', () => {
  assert.deepEqual(parsePinning(undefined, [0, 1]), { local: '0', remote: '1' });
  assert.deepEqual(parsePinning(undefined, [2, 5, 7]), { local: '2', remote: '5' });
  assert.equal(parsePinning(undefined, [0]), undefined);
  assert.equal(parsePinning('off', [0, 1]), undefined);
  assert.deepEqual(parsePinning('0-1:2,3', [0, 1]), { local: '0-1', remote: '2,3' });
  for (const bad of ['0', '0:1:2', 'a:b', ':1', '0:']) assert.throws(() => parsePinning(bad, [0, 1]), /--pin/);
  assert.match(describePinning({ local: '0', remote: '1' }), /remote side .* CPU 1; local side .* CPU 0/);
  assert.match(describePinning(undefined), /not pinned/);
});

test('allowedCpus reads the affinity list of /proc/PID/status', () => {
  assert.deepEqual(allowedCpus('Name:\tx\nCpus_allowed_list:\t0-2,5\n'), [0, 1, 2, 5]);
  assert.ok(allowedCpus().length >= 1);
});

test('pinnedCommand: the process and the children it forks later run on the asked CPU', async () => {
  requireTool('taskset', 'util-linux');
  const cpus = allowedCpus();
  assert.ok(cpus.length >= 2, `this test needs two CPUs, the process may use ${cpus.join(',')}`);
  const want = String(cpus[1]);
  assert.deepEqual(pinnedCommand(undefined, 'sh', ['-c', 'true']), ['sh', ['-c', 'true']]);
  const [cmd, args] = pinnedCommand(want, 'sh', ['-c', 'sleep 30 & echo $!; wait']);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the forked child', () => /\d+\n/.test(out), 10_000);
    assert.equal(cpusOf(child.pid!), want, 'taskset execs the command in place: same PID, pinned');
    assert.equal(cpusOf(out.trim()), want, 'a child forked later inherits the mask');
    process.kill(Number(out.trim()), 'SIGKILL');
  } finally {
    child.kill('SIGKILL');
  }
});

test('pinSelf moves this process and puts it back', () => {
  const before = cpusOf('self');
  const cpus = allowedCpus();
  const restore = pinSelf(String(cpus[0]));
  try {
    assert.equal(cpusOf(process.pid), String(cpus[0]));
  } finally {
    restore();
  }
  assert.equal(cpusOf(process.pid), before);
  assert.doesNotThrow(pinSelf(undefined));
});
