// The kernel-attach commands where the kernel has no nbd module (this machine; the VM test has
// one): every refusal is one line with its documented exit status, before any I/O.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { nbdcryptBin } from '../../peers/nbdcrypt.js';
import { run } from '../../peers/tools.js';

const nbdcrypt = (...args: string[]) => run(process.execPath, [nbdcryptBin, ...args], { allowFail: true, timeoutMs: 30_000 });
const oneLine = (s: string) => s.trim().split('\n').filter((l) => l.startsWith('nbdcrypt: error:'));

test('status and detach without the nbd module: exit 9 and one line saying what to load', () => {
  // This machine has no nbd module; where one is loaded, status lists devices instead.
  if (existsSync('/sys/module/nbd')) {
    assert.equal(nbdcrypt('status').status, 0);
    return;
  }
  for (const args of [['status'], ['detach', '/dev/nbd0']]) {
    const r = nbdcrypt(...args);
    assert.equal(r.status, 9, r.stderr);
    assert.deepEqual(oneLine(r.stderr), ['nbdcrypt: error: the kernel has no nbd netlink family (load the nbd module: modprobe nbd)']);
  }
});

test('usage errors of detach, status and serve --attach are exit 2 before anything is opened', () => {
  const cases: [string[], RegExp][] = [
    [['detach'], /exactly one DEVICE/],
    [['detach', '/dev/sda'], /'\/dev\/sda' is not an nbd device/],
    [['status', 'extra'], /takes no arguments/],
    [['serve', 'memory:1M', '--unencrypted', '--attach', '/dev/nbd0', '--reattach-timeout', '0'], /--reattach-timeout must be a whole number of seconds/],
    [['serve', 'memory:1M', '--unencrypted', '--attach', 'auto', '--attach-with', 'nbd-client'], /--attach auto needs netlink/],
    [['serve', 'memory:1M', '--unencrypted', '--attach', '/dev/nbd0', '--attach-with', 'ioctl'], /--attach-with 'ioctl' must be netlink or nbd-client/],
    [['serve', 'memory:1M', '--unencrypted', '--attach', '/dev/nbd0', '--attach-connections', '17'], /--attach-connections must be a whole number from 1 to 16/],
  ];
  for (const [args, message] of cases) {
    const r = nbdcrypt(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(oneLine(r.stderr).length, 1, r.stderr);
    assert.match(r.stderr, message);
  }
});
