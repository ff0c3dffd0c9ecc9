/**
 * Event-loop lag while the async cipher path encrypts 1 GiB (target: max lag < 5 ms).
 * perf_hooks.monitorEventLoopDelay samples the loop every millisecond while 1 MiB requests
 * (--inflight at a time, default 2) go through (a) XtsCipher.encryptAsync and
 * (b) EncryptedDevice.write over a MemoryDevice, for the native engine and, for comparison,
 * the node engine's sliced async path. Peers in the same run: the plain MemoryDevice for
 * throughput, and for lag the same loop left idle: the work runs in 8 rounds, each followed by
 * an idle window as long, so both face the same machine load (on a shared machine the
 * scheduler alone delays timers by milliseconds). Lag = a 1 ms timer's delay beyond its
 * period. A benchmark, not a test: it asserts nothing.
 * Run: npx tsc -p . && node dist/bench/event-loop-lag.js [--gib N] [--engines native,node] [--inflight N]
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { createXtsCipher, type XtsEngineName } from '../src/crypt/xts-cipher.js';
import { EncryptedDevice } from '../src/crypt/encrypted-device.js';
import { MemoryDevice } from '../src/block/memory-device.js';
import { benchArgs } from './bench-args.js';

const values = benchArgs(
  'Usage: node dist/bench/event-loop-lag.js [--gib N] [--engines native,node] [--inflight N]\n  Event-loop lag while the async cipher path encrypts N GiB, next to an idle control.',
  { gib: { type: 'string', default: '1' }, engines: { type: 'string', default: 'native,node' }, inflight: { type: 'string', default: '2' } },
);
const total = Number(values.gib) * 2 ** 30;
const inflight = Number(values.inflight);
const REQ = 1 << 20;

interface Lag {
  maxMs: number;
  /** The highest of the windows' 99th percentiles. */
  p99Ms: number;
  /** Median over the rounds of each round's max: steadier than one max on a shared machine. */
  medianRoundMaxMs: number;
}

interface Row {
  engine: string;
  path: string;
  seconds: number;
  mbps: number;
  busy: Lag | undefined;
  idle: Lag | undefined;
}

/** Rounds of [busy window, idle window of the same length]: both meet the same machine load. */
const ROUNDS = 8;

/** monitorEventLoopDelay records the whole interval between 1 ms timer runs; lag is the excess. */
const lagMs = (ns: number): number => Math.max(0, ns / 1e6 - 1);
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

/**
 * Lag over several windows: one histogram, reset at the start of each window. (A histogram kept
 * across windows would record the gap between them as one long delay when it is re-enabled.)
 */
class LagMeter {
  private readonly window = monitorEventLoopDelay({ resolution: 1 });
  private readonly roundMax: number[] = [];
  private readonly roundP99: number[] = [];
  start(): void {
    this.window.reset();
    this.window.enable();
  }
  stop(): void {
    this.window.disable();
    if (this.window.count === 0) return;
    this.roundMax.push(lagMs(this.window.max));
    this.roundP99.push(lagMs(this.window.percentile(99)));
  }
  result(): Lag | undefined {
    // A fully synchronous op (the MemoryDevice peer) never lets the timer run: no figures.
    if (this.roundMax.length === 0) return undefined;
    return { maxMs: Math.max(...this.roundMax), p99Ms: Math.max(...this.roundP99), medianRoundMaxMs: median(this.roundMax) };
  }
}

async function measure(engine: string, path: string, op: (i: number, buf: Buffer) => Promise<void>): Promise<Row> {
  const bufs = Array.from({ length: inflight }, () => randomBytes(REQ));
  const busy = new LagMeter();
  const idle = new LagMeter();
  const n = total / REQ;
  let busySeconds = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const end = Math.round(((r + 1) * n) / ROUNDS);
    let next = Math.round((r * n) / ROUNDS);
    const t0 = performance.now();
    busy.start();
    await Promise.all(
      bufs.map(async (buf) => {
        for (let i = next++; i < end; i = next++) await op(i, buf);
      }),
    );
    busy.stop();
    const ms = performance.now() - t0;
    busySeconds += ms / 1000;
    idle.start();
    await new Promise((resolve) => setTimeout(resolve, Math.min(500, Math.max(50, ms))));
    idle.stop();
  }
  return { engine, path, seconds: busySeconds, mbps: total / busySeconds / 1e6, busy: busy.result(), idle: idle.result() };
}

const rows: Row[] = [];
const key = randomBytes(64);
{
  // Peer for the device rows: the same writes straight into the memory disk, no encryption.
  const mem = new MemoryDevice(64 << 20);
  rows.push(await measure('-', 'MemoryDevice.write (peer)', (i, buf) => mem.write((i * REQ) % (64 << 20), buf)));
  await mem.close();
}
for (const engine of values.engines.split(',') as XtsEngineName[]) {
  const c = createXtsCipher(key, engine);
  rows.push(await measure(engine, 'encryptAsync 4K sectors', (i, buf) => c.encryptAsync(buf, i * 2048, 4096)));
  c.destroy();
  // A 64 MiB memory disk, written round and round: the device path adds the copy and the lock.
  const dev = new EncryptedDevice(new MemoryDevice(64 << 20), { key, dataOffset: 0, sectorSize: 4096, engine });
  rows.push(await measure(engine, 'EncryptedDevice.write', (i, buf) => dev.write((i * REQ) % (64 << 20), buf)));
  await dev.close();
}

const fmt = (x: number | undefined): string => (x === undefined ? '-' : x.toFixed(2));
const head = ['engine', 'path', 'GiB', 's', 'MB/s', 'max lag', 'p99', 'med round max', 'idle max', 'idle p99', 'idle med'];
const body = rows.map((r) => [
  r.engine,
  r.path,
  String(values.gib),
  r.seconds.toFixed(2),
  r.mbps.toFixed(0),
  fmt(r.busy?.maxMs),
  fmt(r.busy?.p99Ms),
  fmt(r.busy?.medianRoundMaxMs),
  fmt(r.idle?.maxMs),
  fmt(r.idle?.p99Ms),
  fmt(r.idle?.medianRoundMaxMs),
]);
const w = head.map((x, i) => Math.max(x.length, ...body.map((b) => b[i]!.length)));
for (const line of [head, ...body]) console.log(line.map((c, i) => (i < 2 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  '));
console.log(`(ms; 1 MiB requests, ${inflight} in flight, ${ROUNDS} rounds each followed by an idle window as long (the peer);`);
console.log(' lag = delay of a 1 ms timer beyond its period; target: max lag < 5 ms)');
