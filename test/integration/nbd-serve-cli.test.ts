/**
 * The `nbdcrypt serve` command line: the default private unix socket, refusing non-loopback
 * TCP, --read-only, --help, and a clean exit 0 on SIGINT/SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { nbdinfoJson } from '../../peers/nbdinfo.js';
import { qemuIo } from '../../peers/qemu-io.js';
import { nbdcryptBin, startNbdcrypt } from '../../peers/nbdcrypt.js';
import { run } from '../../peers/tools.js';

test('default listener: nbd.sock (0600) in a fresh 0700 directory, removed on SIGINT; exit 0', async () => {
  const srv = await startNbdcrypt(['serve', '--unencrypted', 'memory:16M', '--name', 'scratch']);
  const path = srv.address.slice('unix:'.length);
  assert.match(srv.address, /^unix:\/.*\/nbdcrypt-[^/]+\/nbd\.sock$/);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(statSync(dirname(path)).mode & 0o777, 0o700);
  assert.match(srv.proc.stdout(), new RegExp(`nbd-client -unix ${path} -N scratch -b 4096 -t 0 /dev/nbd0`));
  assert.match(srv.proc.stdout(), /nbdfuse/);
  assert.match(srv.proc.stderr(), /WITHOUT encryption/);
  assert.equal(nbdinfoJson(srv.uri('scratch')).exports[0]!['export-size'], 16 << 20);
  srv.proc.child.kill('SIGINT');
  assert.equal(await srv.proc.exited, 0);
  assert.equal(existsSync(dirname(path)), false, 'the private directory must be removed');
});

test('--read-only serves a read-only export that refuses writes', async () => {
  const srv = await startNbdcrypt(['serve', '--unencrypted', 'memory:1M', '--read-only']);
  try {
    assert.equal(nbdinfoJson(srv.uri()).exports[0]!.is_read_only, true);
    const r = qemuIo(srv.uri(), ['write -P 1 0 4k'], { allowFail: true });
    assert.match(r.stdout + r.stderr, /Operation not permitted|read.only|Permission denied/i);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('refuses non-loopback TCP without --listen-any, bad listen specs and missing --unencrypted', () => {
  const cases: [string[], RegExp][] = [
    [['serve', '--unencrypted', 'memory:1M', '--listen', 'tcp:0.0.0.0:0'], /non-loopback.*--listen-any/],
    [['serve', '--unencrypted', 'memory:1M', '--listen', 'udp:1'], /must start with unix: or tcp:/],
    [['serve', 'memory:1M'], /--unencrypted/],
    [['serve', '--unencrypted'], /exactly one TARGET/],
  ];
  for (const [argv, msg] of cases) {
    const r = run(process.execPath, [nbdcryptBin, ...argv], { allowFail: true, timeoutMs: 20_000 });
    assert.equal(r.status, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
});

test('--help documents every option and marks --unencrypted as debugging only', () => {
  const out = run(process.execPath, [nbdcryptBin, 'serve', '--help']).stdout;
  for (const flag of ['--unencrypted', '--listen', '--listen-any', '--name', '--read-only', 'memory:SIZE', 'file:PATH']) assert.ok(out.includes(flag), flag);
  assert.match(out, /DEBUGGING/);
});
