/**
 * Chooses keyslot KDF cost the way cryptsetup does: run the KDF on this machine and scale its
 * parameters until one derivation takes about --iter-time (default 2000 ms). For argon2id the
 * memory is raised first (up to 1 GiB, never more than half the free RAM), then the time cost
 * (never below 4); parallelism is min(4, CPUs). Explicit --pbkdf-memory / --pbkdf-parallel /
 * --pbkdf-force-iterations pin a value and skip (part of) the benchmark.
 * Spec: docs/formats.md (LUKS2 KDF cost).
 */
import { availableParallelism, freemem } from 'node:os';
import { randomBytes } from 'node:crypto';
import { NbdcryptError } from '../errors.js';
import { log } from '../log.js';
import { deriveKey, type KeyslotEngines } from './kdf.js';
import type { Kdf } from './luks2-metadata.js';

export const DEFAULT_ITER_TIME_MS = 2000;
export const ARGON2_MIN_TIME = 4;
export const ARGON2_MIN_MEMORY_KIB = 32;
export const ARGON2_MAX_MEMORY_KIB = 4194304;
export const ARGON2_DEFAULT_MAX_MEMORY_KIB = 1048576;
export const ARGON2_MAX_PARALLEL = 4;
export const PBKDF2_MIN_ITERATIONS = 1000;

export interface KdfChoice {
  pbkdf?: 'argon2id' | 'pbkdf2';
  iterTimeMs?: number;
  memoryKiB?: number;
  parallel?: number;
  forceIterations?: number;
  /** The implementations measured: those that will derive the key. */
  engines?: KeyslotEngines;
}

/** Largest argon2 memory we may use here: 1 GiB, capped at half the free RAM. */
export function maxArgonMemoryKiB(): number {
  const halfFree = Math.floor(freemem() / 2 / 1024);
  return Math.max(ARGON2_MIN_MEMORY_KIB, Math.min(ARGON2_DEFAULT_MAX_MEMORY_KIB, halfFree));
}

function usage(msg: string): NbdcryptError {
  return new NbdcryptError('EUSAGE', msg);
}

async function timeKdf(kdf: Kdf, engines: KeyslotEngines): Promise<number> {
  const pw = randomBytes(16);
  const t0 = performance.now();
  const out = await deriveKey(kdf, pw, 64, engines);
  const ms = performance.now() - t0;
  out.fill(0);
  pw.fill(0);
  return ms;
}

const BENCH_MIN_MS = 250;
const BENCH_MIN_MS_FAST = 10;

/** Wall-clock ms of one derivation, as cryptsetup times argon2 (it runs on several threads). */
async function sampleArgon2(t: number, m: number, p: number, salt: Buffer, samples: number, atLeast: number, engines: KeyslotEngines): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < samples; i++) {
    const ms = await timeKdf({ type: 'argon2id', time: t, memory: m, cpus: p, salt }, engines);
    log.debug(`argon2id benchmark: time ${t}, memory ${m} KiB, threads ${p}: ${Math.round(ms)} ms`);
    if (ms < atLeast) return ms;
    best = Math.min(best, ms);
  }
  return best;
}

/** cryptsetup's next_argon2_params: adjusts p in place; true = final (stop measuring). */
function nextArgon2(p: { t: number; m: number }, ms: number, target: number, minM: number, maxM: number): boolean {
  const old = { ...p };
  if (ms > target) {
    const t = Math.floor((p.t * target) / ms);
    if (t < ARGON2_MIN_TIME) {
      p.m = Math.floor((p.t * p.m * target) / (ARGON2_MIN_TIME * ms));
      p.t = ARGON2_MIN_TIME;
      if (p.m < minM) {
        p.m = minM;
        return true;
      }
    } else {
      p.t = t;
    }
  } else {
    const m = Math.floor((p.m * target) / ms);
    if (m > maxM) {
      p.t = Math.floor((p.t * p.m * target) / (maxM * ms));
      p.m = maxM;
      if (p.t <= ARGON2_MIN_TIME) {
        p.t = ARGON2_MIN_TIME;
        return true;
      }
    } else if (m < minM) {
      p.m = minM;
      return true;
    } else {
      p.m = m;
    }
  }
  return old.t === p.t && old.m === p.m;
}

/**
 * cryptsetup's crypt_argon2_check: (1) from the minimum cost grow memory (then time) until one
 * run takes >= 250 ms, (2) extrapolate to the target and re-measure until within 95–110 %.
 * Bounded: at most 30 measurements and max(3 × target, 8 s) of refining.
 */
async function benchmarkArgon2(target: number, parallel: number, maxM: number, salt: Buffer, engines: KeyslotEngines): Promise<{ t: number; m: number }> {
  const minM = Math.max(ARGON2_MIN_MEMORY_KIB, parallel * 8);
  const p = { t: ARGON2_MIN_TIME, m: minM };
  // On a loaded machine the measurements wobble; stop refining after a bounded time.
  const deadline = performance.now() + Math.max(3 * target, 8000);
  let rounds = 0;
  let ms: number;
  for (;;) {
    ms = await sampleArgon2(p.t, p.m, parallel, salt, 3, BENCH_MIN_MS, engines);
    if (ms >= BENCH_MIN_MS || ++rounds > 15 || performance.now() > deadline) break;
    if (p.m === maxM) {
      if (ms < BENCH_MIN_MS_FAST) p.t *= 16;
      else {
        const t = Math.floor((p.t * BENCH_MIN_MS) / ms);
        if (t === p.t) break;
        p.t = t;
      }
    } else {
      if (ms < BENCH_MIN_MS_FAST) p.m *= 16;
      else {
        const m = Math.floor((p.m * BENCH_MIN_MS) / ms);
        if (m === p.m) break;
        p.m = m;
      }
      p.m = Math.min(p.m, maxM);
    }
  }
  do {
    if (nextArgon2(p, ms, target, minM, maxM) || ++rounds > 30 || performance.now() > deadline) break;
    ms = await sampleArgon2(p.t, p.m, parallel, salt, 1, target * 0.95, engines);
  } while (ms < target * 0.95 || ms > target * 1.1);
  return p;
}

/**
 * cryptsetup's crypt_pbkdf_check: PBKDF2 iterations for `targetMs` of this process's user CPU
 * time, probing from 2^15 iterations until one run takes more than 500 ms.
 */
export async function benchmarkPbkdf2(hash: string, targetMs: number, keySize = 64): Promise<number> {
  const pw = randomBytes(16);
  const salt = randomBytes(32);
  let iterations = 1 << 15;
  let result = PBKDF2_MIN_ITERATIONS;
  for (let step = 0; step <= 10; step++) {
    const before = process.cpuUsage();
    const out = await deriveKey({ type: 'pbkdf2', hash, iterations, salt }, pw, keySize);
    out.fill(0);
    const ms = process.cpuUsage(before).user / 1000;
    if (ms > 0) result = Math.floor((iterations * targetMs) / ms);
    if (ms > 500) break;
    iterations *= ms <= 62 ? 16 : ms <= 125 ? 8 : ms <= 250 ? 4 : 2;
  }
  pw.fill(0);
  log.debug(`pbkdf2-${hash} benchmark: ${result} iterations for ${targetMs} ms`);
  return Math.max(PBKDF2_MIN_ITERATIONS, Math.min(0xffffffff, result));
}

/** Fresh KDF parameters (with a new 32-byte salt) for one keyslot, benchmarked unless pinned. */
export async function chooseKdf(c: KdfChoice = {}): Promise<Kdf> {
  const salt = randomBytes(32);
  const target = c.iterTimeMs ?? DEFAULT_ITER_TIME_MS;
  if (!Number.isInteger(target) || target < 1) throw usage(`--iter-time ${target} must be a positive number of milliseconds`);
  if ((c.pbkdf ?? 'argon2id') === 'pbkdf2') {
    if (c.forceIterations !== undefined) {
      if (!Number.isInteger(c.forceIterations) || c.forceIterations < PBKDF2_MIN_ITERATIONS) throw usage(`--pbkdf-force-iterations must be at least ${PBKDF2_MIN_ITERATIONS} for pbkdf2`);
      return { type: 'pbkdf2', hash: 'sha256', iterations: c.forceIterations, salt };
    }
    const iterations = await benchmarkPbkdf2('sha256', target);
    return { type: 'pbkdf2', hash: 'sha256', iterations, salt };
  }

  const cpus = availableParallelism();
  const parallel = c.parallel ?? Math.min(ARGON2_MAX_PARALLEL, cpus);
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > ARGON2_MAX_PARALLEL) throw usage(`--pbkdf-parallel ${parallel} must be 1 … ${ARGON2_MAX_PARALLEL}`);
  const maxM = c.memoryKiB ?? maxArgonMemoryKiB();
  if (!Number.isInteger(maxM) || maxM < ARGON2_MIN_MEMORY_KIB || maxM > ARGON2_MAX_MEMORY_KIB) {
    throw usage(`--pbkdf-memory ${maxM} must be ${ARGON2_MIN_MEMORY_KIB} … ${ARGON2_MAX_MEMORY_KIB} KiB`);
  }
  if (c.memoryKiB !== undefined && c.memoryKiB > Math.floor(freemem() / 2 / 1024)) {
    log.warn(`--pbkdf-memory ${c.memoryKiB} KiB is more than half of the free RAM; unlocking may fail on smaller machines`);
  }
  if (c.forceIterations !== undefined) {
    if (!Number.isInteger(c.forceIterations) || c.forceIterations < ARGON2_MIN_TIME) throw usage(`--pbkdf-force-iterations must be at least ${ARGON2_MIN_TIME} for argon2id`);
    return { type: 'argon2id', time: c.forceIterations, memory: maxM, cpus: parallel, salt };
  }
  const engines = c.engines ?? {};
  const p = c.memoryKiB !== undefined ? await benchmarkPinnedMemory(target, parallel, maxM, salt, engines) : await benchmarkArgon2(target, parallel, maxM, salt, engines);
  return { type: 'argon2id', time: p.t, memory: p.m, cpus: parallel, salt };
}

/** With --pbkdf-memory pinned only the time cost moves (never below 4). */
async function benchmarkPinnedMemory(target: number, parallel: number, m: number, salt: Buffer, engines: KeyslotEngines): Promise<{ t: number; m: number }> {
  let t = ARGON2_MIN_TIME;
  for (let round = 0; round < 8; round++) {
    const ms = Math.max(await sampleArgon2(t, m, parallel, salt, 1, 0, engines), 1);
    const next = Math.max(ARGON2_MIN_TIME, Math.floor((t * target) / ms));
    if ((ms >= target * 0.95 && ms <= target * 1.1) || next === t) break;
    t = next;
  }
  return { t, m };
}

/** KDF options for a new keyslot, as format and the key commands take them. */
export interface KdfOptions {
  iterTimeMs?: number;
  pbkdfMemoryKiB?: number;
  pbkdfParallel?: number;
  pbkdfForceIterations?: number;
  pbkdf?: 'argon2id' | 'pbkdf2';
  /** argon2 and keyslot XTS implementations (the CLI's environment switches). */
  engines?: KeyslotEngines;
}

export function kdfChoiceOf(o: KdfOptions): KdfChoice {
  return { pbkdf: o.pbkdf, iterTimeMs: o.iterTimeMs, memoryKiB: o.pbkdfMemoryKiB, parallel: o.pbkdfParallel, forceIterations: o.pbkdfForceIterations, engines: o.engines };
}
