/**
 * Output of the end-to-end benchmarks: the result model shared by `nbdcrypt bench e2e` and
 * bench/e2e-compare, the text table (MB/s for sequential workloads, IOPS for random ones, and
 * the ratio of the subject row to each peer), and the progress display on stderr (a line
 * rewritten in place on a terminal, one plain line per step otherwise).
 */
import { workloadLabel, type FioResult, type Workload } from './e2e-fio.js';

export interface RowInfo {
  name: string;
  description: string;
}

export interface Result extends FioResult {
  row: string;
  pattern: Workload['pattern'];
  blockSize: number;
  queueDepth: number;
}

export interface Ratio {
  pattern: Workload['pattern'];
  blockSize: number;
  queueDepth: number;
  subject: string;
  versus: string;
  ratio: number;
}

export interface Report {
  startedAt: string;
  finishedAt: string;
  loadGenerator: string;
  seconds: number;
  /** Grid repetitions after the warm-up pass; each cell of `results` is the best of them. */
  rounds: number;
  /** Bytes each sequential workload moved (absent: they ran for `seconds`). */
  sequentialBytes?: number;
  /** Which CPUs the local and the remote side ran on (cpu-pinning.ts). */
  cpus: string;
  cipherEngine: string;
  rows: RowInfo[];
  results: Result[];
  /** Every cell of every round, round by round: the spread behind each best. */
  roundResults: Result[][];
  ratios: Ratio[];
}

const sameWorkload = (a: Workload, b: { pattern: string; blockSize: number; queueDepth: number }): boolean =>
  a.pattern === b.pattern && a.blockSize === b.blockSize && a.queueDepth === b.queueDepth;

/** Sequential workloads compare MB/s, random ones IOPS. */
export const metricOf = (w: Workload, r: FioResult): number => (w.pattern.startsWith('seq') ? r.mbps : r.iops);

/**
 * Each cell's best round: for every row and workload, the cell with the highest metric (the
 * one least disturbed by other load), in the order the first round ran them.
 */
export function bestCells(rounds: Result[][]): Result[] {
  const best = new Map<string, Result>();
  for (const r of rounds.flat()) {
    const key = `${r.row}|${workloadLabel(r)}`;
    const prev = best.get(key);
    if (!prev || metricOf(r, r) > metricOf(prev, prev)) best.set(key, r);
  }
  return [...best.values()];
}

/** The metric of `row` in one workload of `report` (any block size), or undefined if not measured. */
export function resultMetric(report: Report | undefined, row: string, pattern: Workload['pattern'], queueDepth: number): number | undefined {
  return cellMetric(report?.results ?? [], row, pattern, queueDepth);
}

/** The metric of `row` in one workload among `cells` (any block size), or undefined if not there. */
function cellMetric(cells: Result[], row: string, pattern: Workload['pattern'], queueDepth: number): number | undefined {
  const r = cells.find((x) => x.row === row && x.pattern === pattern && x.queueDepth === queueDepth);
  return r ? metricOf({ pattern, blockSize: r.blockSize, queueDepth }, r) : undefined;
}

/**
 * `subject / versus` for one workload in each round where both were measured. The two cells of
 * a round run minutes apart at most, so these show how much of a ratio of bests is noise.
 */
export function roundRatios(report: Report | undefined, subject: string, versus: string, pattern: Workload['pattern'], queueDepth: number): number[] {
  const out: number[] = [];
  for (const round of report?.roundResults ?? []) {
    const a = cellMetric(round, subject, pattern, queueDepth);
    const b = cellMetric(round, versus, pattern, queueDepth);
    if (a !== undefined && b !== undefined && b > 0) out.push(a / b);
  }
  return out;
}

/** One performance target of a comparison bench: what, the measured ratio, met or not. */
export interface Target {
  what: string;
  value: string;
  ok: boolean;
}

/** The middle value (the mean of the two middle ones for an even count); NaN when empty. */
export function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/**
 * `subject / versus` for one workload of `report` when both rows were measured: the ratio of
 * their bests, then with two rounds or more the same ratio round by round, from the two cells
 * of each round, and from three rounds on their median and, given a target `want`, how many
 * rounds meet it on their own.
 */
function ratioSummary(report: Report | undefined, subject: string, versus: string, pattern: Workload['pattern'], queueDepth: number, want?: number): { ratio: number; text: string } | undefined {
  const a = resultMetric(report, subject, pattern, queueDepth);
  const b = resultMetric(report, versus, pattern, queueDepth);
  if (a === undefined || b === undefined || b === 0) return undefined;
  const perRound = roundRatios(report, subject, versus, pattern, queueDepth);
  const meeting = want === undefined ? '' : `, ${perRound.filter((r) => r >= want).length} of ${perRound.length} meet it`;
  const spread = perRound.length >= 3 ? ` (median ${median(perRound).toFixed(2)}${meeting})` : '';
  const rounds = perRound.length > 1 ? `; round by round ${perRound.map((r) => r.toFixed(2)).join(' ')}${spread}` : '';
  return { ratio: a / b, text: `${(a / b).toFixed(2)} (${a.toFixed(0)} / ${b.toFixed(0)})${rounds}` };
}

/**
 * Adds the target `subject / versus >= want` for one workload of `report` when both rows were
 * measured (the line: ratioSummary). The verdict is on the ratio of their bests: a busy host
 * only ever slows a cell down, so each row's best is its least disturbed cell, and more rounds
 * bring it closer to undisturbed. A verdict that only a few rounds support is not settled.
 */
export function addRowsTarget(out: Target[], what: string, report: Report | undefined, subject: string, versus: string, pattern: Workload['pattern'], queueDepth: number, want: number): void {
  const r = ratioSummary(report, subject, versus, pattern, queueDepth, want);
  if (r) out.push({ what: `${what} >= ${want}`, value: r.text, ok: r.ratio >= want });
}

/** Two rows measured side by side (a serve and the same serve with a switch set): their ratio in each workload. */
export function formatSideBySide(report: Report | undefined, a: string, b: string, workloads: Workload[]): string {
  const lines: string[] = [];
  for (const w of workloads) {
    const r = ratioSummary(report, a, b, w.pattern, w.queueDepth);
    if (r) lines.push(`${workloadLabel(w)}: ${r.text}`);
  }
  return lines.length > 0 ? `\n== ${a} / ${b}, side by side ==\n${lines.join('\n')}\n` : '';
}

/** The targets section: one line each, MET or MISSED first. */
export function formatTargets(targets: Target[]): string {
  return `\n== targets ==\n${targets.map((t) => `${t.ok ? 'MET   ' : 'MISSED'} ${t.what}: ${t.value}`).join('\n')}\n`;
}

/** Ratios of `subject` to every other row, per workload measured for both. */
export function ratiosFor(results: Result[], subject: string, workloads: Workload[]): Ratio[] {
  const out: Ratio[] = [];
  for (const w of workloads) {
    const s = results.find((r) => r.row === subject && sameWorkload(w, r));
    if (!s) continue;
    for (const p of results.filter((r) => r.row !== subject && sameWorkload(w, r))) {
      const peer = metricOf(w, p);
      out.push({ pattern: w.pattern, blockSize: w.blockSize, queueDepth: w.queueDepth, subject, versus: p.row, ratio: peer > 0 ? metricOf(w, s) / peer : 0 });
    }
  }
  return out;
}

function fmt(w: Workload, r: Result | undefined): string {
  if (!r) return '-';
  return w.pattern.startsWith('seq') ? `${r.mbps.toFixed(0)} MB/s` : `${Math.round(r.iops)} IOPS`;
}

/** A fixed-width table: one line per workload, a column per row, then ratio columns. */
export function formatTable(report: Report, workloads: Workload[], subject: string): string {
  const rowNames = report.rows.map((r) => r.name);
  const peers = rowNames.filter((n) => n !== subject);
  const head = ['workload', ...rowNames, ...peers.map((p) => `${subject}/${p}`)];
  const lines: string[][] = [head];
  for (const w of workloads) {
    const cells = [workloadLabel(w)];
    for (const n of rowNames) cells.push(fmt(w, report.results.find((r) => r.row === n && sameWorkload(w, r))));
    for (const p of peers) {
      const ra = report.ratios.find((x) => x.subject === subject && x.versus === p && sameWorkload(w, x));
      cells.push(ra ? ra.ratio.toFixed(2) : '-');
    }
    lines.push(cells);
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const body = lines.map((l) => l.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
  const legend = report.rows.map((r) => `  ${r.name}: ${r.description}`).join('\n');
  return (
    `${body}\n\nrows:\n${legend}\n` +
    `load generator: ${report.loadGenerator}; ${cellLength(report)}${report.rounds > 1 ? `, best of ${report.rounds} rounds` : ''} after a short unrecorded warm-up pass; cipher engine ${report.cipherEngine}\n` +
    `CPUs: ${report.cpus}\n` +
    `measured ${report.startedAt} .. ${report.finishedAt}; ratios are ${subject} / peer (higher is better for ${subject})\n`
  );
}

function cellLength(r: Report): string {
  const timed = `${r.seconds} s per cell`;
  return r.sequentialBytes ? `sequential cells move ${(r.sequentialBytes / 2 ** 20).toFixed(0)} MiB each, random ones ${timed}` : timed;
}

/** Progress on stderr: rewritten in place on a terminal, else one line per step. */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private readonly started = Date.now();
  private shown = false;

  constructor(private readonly total: number) {}

  step(done: number, what: string): void {
    const secs = ((Date.now() - this.started) / 1000).toFixed(0);
    const line = `bench e2e [${String(done + 1).padStart(String(this.total).length)}/${this.total}] ${secs}s ${what}`;
    if (this.tty) {
      process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns ?? 100) - 1)}`);
      this.shown = true;
    } else {
      process.stderr.write(`${line}\n`);
    }
  }

  note(msg: string): void {
    this.clear();
    process.stderr.write(`bench e2e: ${msg}\n`);
  }

  clear(): void {
    if (this.tty && this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}

/** Every section's table under a `== name ==` heading, each with the workloads it ran. */
export function formatSections(reports: Record<string, Report>, workloadsOf: (section: string) => Workload[], subject: string): string {
  return Object.entries(reports)
    .map(([name, r]) => `\n== ${name} ==\n${formatTable(r, workloadsOf(name), subject)}`)
    .join('');
}
