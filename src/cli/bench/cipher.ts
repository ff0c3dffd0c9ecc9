/**
 * `nbdcrypt bench cipher`: single-thread MB/s of each XTS engine at 512- and 4096-byte
 * sectors, each measured next to `openssl speed -evp aes-256-xts -bytes <sectorSize>` in the
 * same run, once before and once after our engines (the machine is shared, so only the
 * ratio means much; the mean of the two openssl runs brackets the drift). Each tinybench
 * iteration encrypts a 1 MiB buffer in place several times with the synchronous call; time
 * is user CPU time like openssl speed's default, or wall-clock with --elapsed for both. Targets:
 * native ≥ 0.85 of openssl at 4 KiB, ≥ 0.70 at 512 B (docs/performance.md, Encryption).
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Bench, type TimestampProvider } from 'tinybench';
import { NbdcryptError } from '../../errors.js';
import { createXtsCipher, type XtsEngineName } from '../../crypt/xts-cipher.js';
import { opensslSpeed } from './openssl-speed.js';

export const help = `Usage: nbdcrypt bench cipher [--seconds N] [--json] [--reference] [--elapsed]

Measure aes-xts-plain64 throughput of the cipher engines (native addon, node:crypto, and
optionally the pure-TypeScript reference) on one thread, for 512- and 4096-byte sectors,
next to 'openssl speed -evp aes-256-xts -bytes SECTOR' run in the same invocation (before
and after the engines; the mean of the two is the peer figure).

Options:
  --seconds N     measuring time per engine and per openssl run (default 2)
  --json          print one JSON array of rows {engine, sectorSize, mbps, opensslMbps, ratio}
                  on standard output instead of the table
  --reference     also measure the reference engine (very slow; tests use it as an oracle)
  --elapsed       use wall-clock time for both sides (default: user CPU time, as openssl
                  speed does, which is steadier on a busy machine)
  --sizes LIST    sector sizes to measure, comma-separated (default 512,4096)

MB/s are 10^6 bytes per second. The ratio is engine MB/s / openssl MB/s.
`;

export interface CipherRow {
  engine: XtsEngineName;
  sectorSize: number;
  mbps: number;
  opensslMbps: number;
  ratio: number;
}

export interface CipherBenchOptions {
  seconds: number;
  engines: XtsEngineName[];
  sectorSizes: number[];
  elapsed: boolean;
}

/** User CPU time of this process in milliseconds, as a tinybench clock. */
const cpuClock: TimestampProvider = {
  name: 'cpu-user',
  fn: () => process.cpuUsage().user / 1000,
  fromMs: (ms) => ms,
  toMs: (v) => Number(v),
};

/** Bytes ciphered per tinybench iteration: several ms of work, so clock reads cost nothing. */
function bytesPerIteration(engine: XtsEngineName): number {
  return engine === 'native' ? 16 << 20 : engine === 'node' ? 4 << 20 : 256 << 10;
}

/** Runs the suite; one row per engine × sector size, in that order. */
export async function measureCipher(o: CipherBenchOptions): Promise<CipherRow[]> {
  const key = randomBytes(64);
  const rows: CipherRow[] = [];
  for (const ss of o.sectorSizes) {
    const before = opensslSpeed(ss, o.seconds, o.elapsed);
    const bench = new Bench({ time: o.seconds * 1000, warmupTime: 200, ...(o.elapsed ? {} : { timestampProvider: cpuClock }) });
    const perIter = new Map<string, number>();
    for (const engine of o.engines) {
      const c = createXtsCipher(key, engine);
      const chunk = Math.min(1 << 20, bytesPerIteration(engine));
      const buf = randomBytes(chunk);
      const reps = bytesPerIteration(engine) / chunk;
      perIter.set(engine, chunk * reps);
      bench.add(engine, () => {
        for (let i = 0; i < reps; i++) c.encrypt(buf, i * 2048, ss);
      });
    }
    await bench.run();
    // openssl runs before and after our engines; their mean brackets the machine's drift.
    const openssl = (before + opensslSpeed(ss, o.seconds, o.elapsed)) / 2;
    for (const task of bench.tasks) {
      const r = task.result;
      if (r.state !== 'completed') throw new NbdcryptError('EIO', `bench cipher: ${task.name} at ${ss} bytes did not complete (${r.state})`);
      const mbps = perIter.get(task.name)! / (r.period / 1000) / 1e6;
      rows.push({ engine: task.name as XtsEngineName, sectorSize: ss, mbps, opensslMbps: openssl, ratio: mbps / openssl });
    }
  }
  return rows;
}

export function formatCipherTable(rows: CipherRow[], elapsed: boolean): string {
  const head = ['engine', 'sector', 'MB/s', 'openssl MB/s', 'ratio'];
  const body = rows.map((r) => [r.engine, String(r.sectorSize), r.mbps.toFixed(0), r.opensslMbps.toFixed(0), r.ratio.toFixed(2)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), ...body.map(line)].join('\n') + `\n(one thread; ${elapsed ? 'wall-clock' : 'user CPU'} time; openssl speed -evp aes-256-xts -bytes SECTOR run before and after, mean shown)\n`;
}

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        seconds: { type: 'string', default: '2' },
        json: { type: 'boolean', default: false },
        reference: { type: 'boolean', default: false },
        elapsed: { type: 'boolean', default: false },
        sizes: { type: 'string', default: '512,4096' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new NbdcryptError('EUSAGE', `bench cipher: ${(e as Error).message}; see 'nbdcrypt bench cipher --help'`);
  }
  const seconds = Number(values.seconds);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 600) throw new NbdcryptError('EUSAGE', `bench cipher: --seconds must be a whole number from 1 to 600, got '${values.seconds}'`);
  const sectorSizes = values.sizes.split(',').map(Number);
  if (sectorSizes.some((s) => ![512, 1024, 2048, 4096].includes(s))) throw new NbdcryptError('EUSAGE', `bench cipher: --sizes takes 512, 1024, 2048 or 4096, got '${values.sizes}'`);
  const engines: XtsEngineName[] = ['native', 'node'];
  if (values.reference) engines.push('reference');
  const rows = await measureCipher({ seconds, engines, sectorSizes, elapsed: values.elapsed });
  process.stdout.write(values.json ? JSON.stringify(rows) + '\n' : formatCipherTable(rows, values.elapsed));
  return 0;
}
