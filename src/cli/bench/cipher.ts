/**
 * `nbdcrypt bench cipher`: single-thread MB/s of each XTS engine at 512- and 4096-byte
 * sectors, each measured next to `openssl speed -evp aes-256-xts -bytes <sectorSize>` in the
 * same run, once before and once after our engines (the machine is shared, so only the
 * ratio means much; the mean of the two openssl runs brackets the drift). Each tinybench
 * iteration encrypts a 1 MiB buffer in place several times with the synchronous call; time
 * is user CPU time like openssl speed's default, or wall-clock with --elapsed for both. Targets:
 * native ≥ 0.85 of openssl at 4 KiB, ≥ 0.70 at 512 B (docs/performance.md, Encryption).
 * Then one row per other cipher spec (aes, twofish, serpent × xts-plain64, cbc-essiv:sha256,
 * cbc-plain64, cbc-plain): encrypt and decrypt MB/s with 4 KiB sectors on the default engine.
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Bench, type TimestampProvider } from 'tinybench';
import { NbdcryptError } from '../../errors.js';
import { createXtsCipher, defaultEngine, type XtsEngineName } from '../../crypt/xts-cipher.js';
import { createSectorCipher, type EngineName } from '../../crypt/sector-cipher.js';
import type { Environment } from '../environment.js';
import { keySizes, parseCipherSpec } from '../../crypt/cipher-spec.js';
import { opensslSpeed } from './openssl-speed.js';

export const help = `Usage: nbdcrypt bench cipher [--seconds N] [--json] [--reference] [--elapsed] [--ciphers LIST] [--fallback]

Measure aes-xts-plain64 throughput of the cipher engines (native addon, node:crypto, and
optionally the pure-TypeScript reference) on one thread, for 512- and 4096-byte sectors,
next to 'openssl speed -evp aes-256-xts -bytes SECTOR' run in the same invocation (before
and after the engines; the mean of the two is the peer figure). Then the other ciphers
LUKS volumes use: encrypt and decrypt MB/s per cipher spec, 4096-byte sectors, one thread,
on the default engine (the native addon when it is built).

Options:
  --seconds N     measuring time per engine and per openssl run (default 2)
  --json          print one JSON array of rows {engine, sectorSize, mbps, opensslMbps, ratio}
                  on standard output instead of the table
  --reference     also measure the reference engine (very slow; tests use it as an oracle)
  --elapsed       use wall-clock time for both sides (default: user CPU time, as openssl
                  speed does, which is steadier on a busy machine)
  --sizes LIST    sector sizes to measure, comma-separated (default 512,4096)
  --ciphers LIST  cipher specs to measure after AES-XTS, comma-separated, 'all' or 'none'
                  (default: all for the table; none with --json, whose array then holds
                  only the AES-XTS rows; given, rows {cipher, engine, sectorSize,
                  encryptMbps, decryptMbps} follow them)
  --fallback      also measure the ciphers on the portable engine (node:crypto for AES,
                  TypeScript for Twofish and Serpent; slow)

MB/s are 10^6 bytes per second. The ratio is engine MB/s / openssl MB/s.
`;

/** Specs measured by default: every cipher in the modes LUKS volumes use. */
export const CIPHER_SPECS: readonly string[] = ['aes', 'twofish', 'serpent'].flatMap((c) =>
  ['xts-plain64', 'cbc-essiv:sha256', 'cbc-plain64', 'cbc-plain'].map((m) => `${c}-${m}`),
);

export interface CipherSpecRow {
  cipher: string;
  engine: EngineName;
  sectorSize: number;
  encryptMbps: number;
  decryptMbps: number;
}

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

/**
 * Encrypt and decrypt MB/s of each spec with its largest key (XTS: 512 bits, else 256), one
 * tinybench task per direction, same clock and buffer scheme as measureCipher.
 */
export async function measureCipherSpecs(o: { seconds: number; specs: readonly string[]; engines: EngineName[]; elapsed: boolean; sectorSize: number }): Promise<CipherSpecRow[]> {
  const rows: CipherSpecRow[] = [];
  for (const engine of o.engines) {
    const bench = new Bench({ time: o.seconds * 1000, warmupTime: 200, ...(o.elapsed ? {} : { timestampProvider: cpuClock }) });
    const perIter = engine === 'native' ? 4 << 20 : 256 << 10;
    const chunk = Math.min(1 << 20, perIter);
    for (const name of o.specs) {
      const spec = parseCipherSpec(name);
      const sizes = keySizes(spec);
      const c = createSectorCipher(spec, randomBytes(sizes[sizes.length - 1]!), engine);
      const buf = randomBytes(chunk);
      for (const dir of ['encrypt', 'decrypt'] as const) {
        bench.add(`${name}\t${dir}`, () => {
          for (let i = 0; i < perIter / chunk; i++) c[dir](buf, i * 2048, o.sectorSize);
        });
      }
    }
    await bench.run();
    const mbps = new Map<string, number>();
    for (const task of bench.tasks) {
      const r = task.result;
      if (r.state !== 'completed') throw new NbdcryptError('EIO', `bench cipher: ${task.name.replace('\t', ' ')} did not complete (${r.state})`);
      mbps.set(task.name, perIter / (r.period / 1000) / 1e6);
    }
    for (const name of o.specs) {
      rows.push({ cipher: name, engine, sectorSize: o.sectorSize, encryptMbps: mbps.get(`${name}\tencrypt`)!, decryptMbps: mbps.get(`${name}\tdecrypt`)! });
    }
  }
  return rows;
}

export function formatCipherSpecTable(rows: CipherSpecRow[], elapsed: boolean): string {
  const head = ['cipher', 'engine', 'sector', 'encrypt MB/s', 'decrypt MB/s'];
  const body = rows.map((r) => [r.cipher, r.engine, String(r.sectorSize), r.encryptMbps.toFixed(0), r.decryptMbps.toFixed(0)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), ...body.map(line)].join('\n') + `\n(one thread; ${elapsed ? 'wall-clock' : 'user CPU'} time; largest key of each spec)\n`;
}

export function formatCipherTable(rows: CipherRow[], elapsed: boolean): string {
  const head = ['engine', 'sector', 'MB/s', 'openssl MB/s', 'ratio'];
  const body = rows.map((r) => [r.engine, String(r.sectorSize), r.mbps.toFixed(0), r.opensslMbps.toFixed(0), r.ratio.toFixed(2)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), ...body.map(line)].join('\n') + `\n(one thread; ${elapsed ? 'wall-clock' : 'user CPU'} time; openssl speed -evp aes-256-xts -bytes SECTOR run before and after, mean shown)\n`;
}

export async function run(argv: string[], env: Environment): Promise<number> {
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
        ciphers: { type: 'string' },
        fallback: { type: 'boolean', default: false },
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
  const list = values.ciphers ?? (values.json ? 'none' : 'all');
  const specs = list === 'all' ? CIPHER_SPECS : list === 'none' ? [] : list.split(',');
  for (const spec of specs) {
    try {
      parseCipherSpec(spec);
    } catch (e) {
      throw new NbdcryptError('EUSAGE', `bench cipher: --ciphers: ${(e as Error).message}`);
    }
  }
  const rows = await measureCipher({ seconds, engines, sectorSizes, elapsed: values.elapsed });
  const specEngines: EngineName[] = [env.engines.xts ?? defaultEngine()];
  if (values.fallback && specEngines[0] === 'native') specEngines.push('node');
  const specRows = specs.length ? await measureCipherSpecs({ seconds, specs, engines: specEngines, elapsed: values.elapsed, sectorSize: 4096 }) : [];
  if (values.json) process.stdout.write(JSON.stringify([...rows, ...specRows]) + '\n');
  else process.stdout.write(formatCipherTable(rows, values.elapsed) + (specRows.length ? '\n' + formatCipherSpecTable(specRows, values.elapsed) : ''));
  return 0;
}
