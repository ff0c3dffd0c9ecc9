/**
 * `nbdcrypt bench e2e --json` end to end with its real peers (nbd-server, sshd, ssh -L, fio's
 * nbd engine): the JSON report has the documented shape, every row moved data in every
 * workload, ratios are present for each peer, and the sub-steps are reported on stderr. No
 * timing assertions: the machine is shared, only the shape and "data moved" are checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Report } from '../../src/cli/bench/e2e-report.js';
import { allowedCpus } from '../../src/cli/bench/cpu-pinning.js';
import { requireTool, run } from '../../peers/tools.js';

const bin = join(process.cwd(), 'bin', 'nbdcrypt.js');

test('bench e2e --json: every row moves data in every workload, ratios for each peer', () => {
  for (const [tool, pkg] of [['fio', 'fio'], ['nbd-server', 'nbd-server'], ['sshd', 'openssh-server'], ['ssh', 'openssh-client']] as const) requireTool(tool, pkg);
  const r = run(process.execPath, [bin, 'bench', 'e2e', '--json', '--seconds', '1', '--depths', '1,16', '--size', '128M', '--rounds', '1', '--transfer', '32M'], { allowFail: true, timeoutMs: 240_000 });
  assert.equal(r.status, 0, `bench e2e failed: ${r.stderr}`);
  const report = JSON.parse(r.stdout) as Report;
  assert.deepEqual(report.rows.map((x) => x.name), ['nbdcrypt', 'nbd-server', 'ssh-tunnel']);
  assert.match(report.loadGenerator, /fio.*nbd/);
  assert.equal(report.seconds, 1);
  assert.equal(report.rounds, 1);
  assert.equal(report.sequentialBytes, 32 << 20);
  // Two CPUs or more: the remote side (sshd, nbd-server) on the second, the rest on the first.
  if (allowedCpus().length >= 2) assert.match(report.cpus, /remote side .* on CPU \d+; local side .* on CPU \d+/);
  else assert.match(report.cpus, /not pinned/);
  assert.ok(!Number.isNaN(Date.parse(report.startedAt)) && !Number.isNaN(Date.parse(report.finishedAt)));
  assert.ok(['native', 'node'].includes(report.cipherEngine), report.cipherEngine);
  const patterns = ['seq-read', 'seq-write', 'rand-read', 'rand-write'];
  assert.equal(report.results.length, 3 * patterns.length * 2);
  for (const row of report.rows) {
    for (const pattern of patterns) {
      for (const qd of [1, 16]) {
        const res = report.results.find((x) => x.row === row.name && x.pattern === pattern && x.queueDepth === qd);
        assert.ok(res, `missing ${row.name} ${pattern} QD${qd}`);
        assert.equal(res.blockSize, pattern.startsWith('seq') ? 1 << 20 : 4096);
        assert.ok(res.bytes >= res.blockSize, `${row.name} ${pattern} QD${qd} moved no data: ${JSON.stringify(res)}`);
        assert.ok(res.mbps > 0 && res.iops > 0 && res.seconds > 0, `${row.name} ${pattern} QD${qd}: ${JSON.stringify(res)}`);
      }
    }
  }
  for (const versus of ['nbd-server', 'ssh-tunnel']) {
    const rs = report.ratios.filter((x) => x.subject === 'nbdcrypt' && x.versus === versus);
    assert.equal(rs.length, patterns.length * 2, `ratios vs ${versus}`);
    for (const x of rs) assert.ok(Number.isFinite(x.ratio) && x.ratio > 0, JSON.stringify(x));
  }
  // Not a terminal here: one plain progress line per measurement on stderr, the unrecorded
  // warm-up pass over the same 24 cells first.
  assert.equal((r.stderr.match(/^bench e2e \[\s*\d+\/48\]/gm) ?? []).length, 48, r.stderr);
  assert.equal((r.stderr.match(/^bench e2e \[\s*(?:[1-9]|1\d|2[0-4])\/48\] .*\(warm-up\)$/gm) ?? []).length, 24, r.stderr);
  assert.equal(report.roundResults.length, 1);
  assert.deepEqual(report.roundResults[0], report.results, 'with one round, its cells are the results');
});

test('bench e2e: a TARGET without --key-file is a usage error (exit 2)', () => {
  const r = run(process.execPath, [bin, 'bench', 'e2e', 'file:/nonexistent.img'], { allowFail: true, timeoutMs: 30_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--key-file/);
});
