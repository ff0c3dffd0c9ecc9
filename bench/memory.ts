/**
 * Memory of `nbdcrypt serve` under load: a 2 GiB `nbdcopy --connections 4 --requests 64`
 * into an encrypted volume on a loopback nbd-server reached over a real sshd, then 2 GiB back
 * out, while the serve process's RSS is sampled (/proc/PID/status VmRSS every 100 ms; VmHWM
 * at the end). The budget is 150 MiB plus the cache size (docs/performance.md, Memory). The
 * same copy through `serve --unencrypted` over the same ssh link is measured in the same run,
 * as the baseline (no cipher, no cache) and for the throughput ratio.
 * Run: npm run build && node dist/bench/memory.js [--size 2G] [--cache 64M]
 */
import { readFileSync } from 'node:fs';
import { parseSize } from '../src/size.js';
import { nbdcopyAsync } from '../peers/nbdcopy.js';
import { startNbdcrypt, type NbdcryptProc } from '../peers/nbdcrypt.js';
import { requireTool } from '../peers/tools.js';
import { remoteVolume } from '../peers/remote-volume.js';
import { benchArgs } from './bench-args.js';

const MiB = 1024 * 1024;

function status(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

interface Row {
  label: string;
  writeMBps: number;
  readMBps: number;
  /** Peak RSS during the write phase. */
  writePeak: number;
  peakRss: number;
  hwm: number;
}

async function measure(label: string, srv: NbdcryptProc, size: number): Promise<Row> {
  requireTool('nbdcopy', 'libnbd-bin'); // before any peer starts
  requireTool('nbdkit', 'nbdkit');
  let peak = 0;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, status(srv.proc.pid, 'VmRSS'));
    } catch {
      // exited
    }
  }, 100);
  // nbdcopy runs asynchronously, so the event loop (and the sampler) keeps going.
  const w = await nbdcopyAsync(['[', 'nbdkit', 'random', String(size), ']'], srv.uri(), { extra: ['--flush', '--'], timeoutMs: 1_800_000 });
  const writePeak = peak;
  const r = await nbdcopyAsync(srv.uri(), 'null:', { timeoutMs: 1_800_000 });
  clearInterval(sampler);
  const hwm = status(srv.proc.pid, 'VmHWM');
  return { label, writeMBps: size / 1e6 / w, readMBps: size / 1e6 / r, writePeak, peakRss: peak, hwm };
}

async function main(): Promise<void> {
  const values = benchArgs(
    'Usage: node dist/bench/memory.js [--size 2G] [--cache 64M]\n  RSS of nbdcrypt serve during an nbdcopy in and out over a loopback sshd, next to serve --unencrypted.',
    { size: { type: 'string', default: '2G' }, cache: { type: 'string', default: '64M' } },
  );
  const size = parseSize(values.size!, '--size');
  const cache = parseSize(values.cache!, '--cache');
  const vol = await remoteVolume(size + 16 * MiB);
  const rows: Row[] = [];
  try {
    let srv = await startNbdcrypt(vol.serveArgs(['--cache', String(cache), '--connections', '4', ...(process.env.STATS ? ['--stats-interval', '1'] : [])]), { env: vol.env, timeoutMs: 60_000 });
    rows.push(await measure(`encrypted, cache ${cache / MiB} MiB`, srv, size));
    await srv.stop();
    if (process.env.STATS) process.stderr.write(srv.proc.stderr());
    // Baseline: the same link, no cipher and no cache (this overwrites the volume: last).
    srv = await startNbdcrypt(['serve', '--unencrypted', vol.uri, ...vol.sshArgs, '--connections', '4', '--listen', `unix:${vol.socket}`], { env: vol.env, timeoutMs: 60_000 });
    rows.push(await measure('unencrypted (baseline)', srv, size));
    await srv.stop();
  } finally {
    await vol.stop();
  }
  const budget = 150 * MiB + cache;
  const enc = rows[0]!;
  const base = rows[1]!;
  const line = (r: Row) =>
    `| ${r.label.padEnd(26)} | ${r.writeMBps.toFixed(0).padStart(9)} | ${r.readMBps.toFixed(0).padStart(8)} | ${(r.writePeak / MiB).toFixed(0).padStart(14)} | ${(r.peakRss / MiB).toFixed(0).padStart(13)} | ${(r.hwm / MiB).toFixed(0).padStart(10)} |`;
  console.log(`\nnbdcopy of ${size / MiB} MiB over ssh (4 connections, 64 requests each), serve RSS sampled every 100 ms\n`);
  console.log('| stack                      | write MB/s | read MB/s | RSS write MiB | peak RSS MiB | VmHWM MiB |');
  console.log('|----------------------------|-----------:|----------:|--------------:|-------------:|----------:|');
  for (const r of rows) console.log(line(r));
  console.log(`\nbudget 150 MiB + cache = ${(budget / MiB).toFixed(0)} MiB; encrypted VmHWM ${(enc.hwm / MiB).toFixed(0)} MiB (${enc.hwm <= budget ? 'within' : 'OVER'} budget)`);
  console.log(`throughput ratio encrypted/unencrypted: write ${(enc.writeMBps / base.writeMBps).toFixed(2)}, read ${(enc.readMBps / base.readMBps).toFixed(2)}`);
}

await main();
