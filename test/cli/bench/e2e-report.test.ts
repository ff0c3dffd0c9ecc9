/**
 * The targets of the comparison benches (src/cli/bench/e2e-report.ts): the verdict is on the
 * ratio of the two rows' bests, and the same ratio round by round follows it, from the cells
 * each round measured, with its median and how many rounds meet the target from three rounds
 * on. The rows' order rotates from round to round (src/cli/bench/e2e.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addRowsTarget, bestCells, formatSideBySide, median, roundRatios, type Report, type Result, type Target } from '../../../src/cli/bench/e2e-report.js';
import { rowsInRound } from '../../../src/cli/bench/e2e.js';

function cell(row: string, pattern: Result['pattern'], value: number): Result {
  const seq = pattern.startsWith('seq');
  return { row, pattern, blockSize: seq ? 1 << 20 : 4096, queueDepth: 16, bytes: 1 << 30, seconds: 1, mbps: seq ? value : 1, iops: seq ? 1 : value };
}

function report(rounds: Result[][]): Report {
  return { startedAt: '', finishedAt: '', loadGenerator: 'fio', seconds: 1, rounds: rounds.length, cpus: '', cipherEngine: 'native', rows: [], results: bestCells(rounds), roundResults: rounds, ratios: [] };
}

test('roundRatios pairs the two rows within each round; rounds missing a row are skipped', () => {
  const r = report([
    [cell('a', 'seq-write', 600), cell('b', 'seq-write', 700), cell('a', 'rand-read', 20_000), cell('b', 'rand-read', 10_000)],
    [cell('a', 'seq-write', 720), cell('b', 'seq-write', 600)],
    [cell('b', 'seq-write', 650)],
  ]);
  assert.deepEqual(roundRatios(r, 'a', 'b', 'seq-write', 16), [600 / 700, 720 / 600]);
  assert.deepEqual(roundRatios(r, 'a', 'b', 'rand-read', 16), [2]);
  assert.deepEqual(roundRatios(undefined, 'a', 'b', 'rand-read', 16), []);
});

test('addRowsTarget judges the bests and lists the rounds after them', () => {
  const r = report([
    [cell('a', 'seq-write', 600), cell('b', 'seq-write', 700)],
    [cell('a', 'seq-write', 720), cell('b', 'seq-write', 600)],
  ]);
  const out: Target[] = [];
  addRowsTarget(out, 'a/b write', r, 'a', 'b', 'seq-write', 16, 1.0);
  addRowsTarget(out, 'a/b write, strict', r, 'a', 'b', 'seq-write', 16, 1.1);
  addRowsTarget(out, 'a/c write', r, 'a', 'c', 'seq-write', 16, 1.0);
  assert.deepEqual(out, [
    { what: 'a/b write >= 1', value: '1.03 (720 / 700); round by round 0.86 1.20', ok: true },
    { what: 'a/b write, strict >= 1.1', value: '1.03 (720 / 700); round by round 0.86 1.20', ok: false },
  ]);
  const single: Target[] = [];
  addRowsTarget(single, 'one round', report([[cell('a', 'rand-read', 3), cell('b', 'rand-read', 2)]]), 'a', 'b', 'rand-read', 16, 1);
  assert.deepEqual(single, [{ what: 'one round >= 1', value: '1.50 (3 / 2)', ok: true }]);
});

test('from three rounds on, a target line adds the median of the rounds and how many meet it', () => {
  // The bests (800 / 700) meet 1.0; only two rounds of five do: one lucky cell of a.
  const r = report([
    [cell('a', 'seq-write', 800), cell('b', 'seq-write', 700)],
    [cell('a', 'seq-write', 540), cell('b', 'seq-write', 600)],
    [cell('a', 'seq-write', 570), cell('b', 'seq-write', 600)],
    [cell('a', 'seq-write', 660), cell('b', 'seq-write', 600)],
    [cell('a', 'seq-write', 560), cell('b', 'seq-write', 600)],
  ]);
  const out: Target[] = [];
  addRowsTarget(out, 'a/b write', r, 'a', 'b', 'seq-write', 16, 1.0);
  addRowsTarget(out, 'a/b write, loose', r, 'a', 'b', 'seq-write', 16, 0.9);
  assert.deepEqual(out, [
    { what: 'a/b write >= 1', value: '1.14 (800 / 700); round by round 1.14 0.90 0.95 1.10 0.93 (median 0.95, 2 of 5 meet it)', ok: true },
    { what: 'a/b write, loose >= 0.9', value: '1.14 (800 / 700); round by round 1.14 0.90 0.95 1.10 0.93 (median 0.95, 5 of 5 meet it)', ok: true },
  ]);
});

test('formatSideBySide gives two rows\' ratio in each workload both ran, round by round', () => {
  const r = report([
    [cell('a', 'seq-read', 600), cell('b', 'seq-read', 500), cell('a', 'rand-read', 20_000), cell('b', 'rand-read', 20_000)],
    [cell('a', 'seq-read', 550), cell('b', 'seq-read', 550), cell('a', 'rand-read', 21_000), cell('b', 'rand-read', 19_000)],
    [cell('a', 'seq-read', 660), cell('b', 'seq-read', 600), cell('a', 'rand-read', 18_000), cell('b', 'rand-read', 20_000)],
  ]);
  const workloads = [
    { pattern: 'seq-read' as const, blockSize: 1 << 20, queueDepth: 16 },
    { pattern: 'rand-read' as const, blockSize: 4096, queueDepth: 16 },
    { pattern: 'seq-write' as const, blockSize: 1 << 20, queueDepth: 16 },
  ];
  assert.equal(
    formatSideBySide(r, 'a', 'b', workloads),
    '\n== a / b, side by side ==\n' +
      'seq-read 1M QD16: 1.10 (660 / 600); round by round 1.20 1.00 1.10 (median 1.10)\n' +
      'rand-read 4K QD16: 1.05 (21000 / 20000); round by round 1.00 1.11 0.90 (median 1.00)\n',
  );
  assert.equal(formatSideBySide(r, 'a', 'c', workloads), '', 'nothing when a row is missing');
});

test('median takes the middle value, or the mean of the two middle ones', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  assert.ok(Number.isNaN(median([])));
});

test('rowsInRound rotates the rows by one each round, every row once per round', () => {
  const rows = ['nbdcrypt', 'ssh+cmd', 'ssh-tunnel'];
  assert.deepEqual(rowsInRound(rows, 0), rows);
  assert.deepEqual(rowsInRound(rows, 1), ['ssh+cmd', 'ssh-tunnel', 'nbdcrypt']);
  assert.deepEqual(rowsInRound(rows, 2), ['ssh-tunnel', 'nbdcrypt', 'ssh+cmd']);
  assert.deepEqual(rowsInRound(rows, 3), rows);
  assert.deepEqual(rows, ['nbdcrypt', 'ssh+cmd', 'ssh-tunnel'], 'the caller\'s list is left alone');
  assert.deepEqual(rowsInRound([], 5), []);
});
