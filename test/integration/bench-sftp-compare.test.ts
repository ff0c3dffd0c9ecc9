/**
 * bench/sftp-compare at tiny sizes with its real peers (sshd, nbd-server, qemu-nbd's ssh
 * driver, nbdkit's ssh plugin, sshfs + losetup, fio), so the benchmark cannot rot: the JSON
 * report has every row with data moved in every workload, the WAN section has both rows, and
 * every target has a ratio. No timing assertions: the machine is shared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Report } from '../../src/cli/bench/e2e-report.js';
import { requireTool, run } from '../../peers/tools.js';

const script = join(process.cwd(), 'dist', 'bench', 'sftp-compare.js');

test('bench/sftp-compare --json: every row moves data in every workload, every target gets a ratio', () => {
  const tools = [['fio', 'fio'], ['nbd-server', 'nbd-server'], ['sshd', 'openssh-server'], ['ssh-agent', 'openssh-client'], ['qemu-nbd', 'qemu-utils'], ['nbdkit', 'nbdkit'], ['sshfs', 'sshfs'], ['losetup', 'mount']] as const;
  for (const [tool, pkg] of tools) requireTool(tool, pkg);
  const args = ['--json', '--size', '64M', '--transfer', '4M', '--seconds', '1', '--wan-seconds', '1', '--rounds', '1', '--wan-delay-ms', '2'];
  const r = run(process.execPath, [script, ...args], { allowFail: true, timeoutMs: 150_000 });
  assert.equal(r.status, 0, `sftp-compare failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { reports: Record<string, Report>; targets: { what: string; value: string; ok: boolean }[] };
  const lan = out.reports.lan!;
  assert.deepEqual(lan.rows.map((x) => x.name), ['sftp', 'ssh', 'qemu-ssh-luks', 'nbdkit-ssh', 'sshfs-loop']);
  assert.equal(lan.roundResults.length, 1);
  assert.equal(lan.roundResults[0]!.length, lan.results.length, 'one round holds every cell');
  assert.match(lan.rows[0]!.description, /sftp:\/\//);
  for (const row of lan.rows) {
    for (const pattern of ['seq-read', 'seq-write', 'rand-read', 'rand-write'] as const) {
      const res = lan.results.find((x) => x.row === row.name && x.pattern === pattern && x.queueDepth === 16);
      assert.ok(res && res.bytes >= res.blockSize && res.mbps > 0 && res.iops > 0, `${row.name} ${pattern}: ${JSON.stringify(res)}`);
    }
  }
  assert.deepEqual(out.reports.wan!.rows.map((x) => x.name), ['sftp', 'sshfs-loop']);
  for (const x of out.reports.wan!.results) assert.ok(x.bytes > 0, JSON.stringify(x));
  // 4 workloads x 2 peers on loopback, one on the WAN.
  assert.equal(out.targets.length, 9, JSON.stringify(out.targets));
  for (const t of out.targets) assert.match(t.value, /^\d+\.\d\d \(\d+ \/ \d+\)$/, t.what);
});

test('bench/sftp-compare --help prints the usage; an unknown option is exit 2', () => {
  const help = run(process.execPath, [script, '--help'], { allowFail: true, timeoutMs: 30_000 });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--wan-connections/);
  const bad = run(process.execPath, [script, '--no-such-option'], { allowFail: true, timeoutMs: 30_000 });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /no-such-option/);
});
