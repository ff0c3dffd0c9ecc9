/**
 * Fuzzing the LUKS2 reader: thousands of mutated binary headers (with and without a fixed-up
 * checksum, so mutations reach the field checks) and mutated JSON areas (text edits and
 * structured value swaps, re-checksummed so they reach the validator) must never crash it:
 * each read either succeeds or throws NbdcryptError EBADHDR. Seeded, so failures reproduce.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDevice } from '../../src/block/memory-device.js';
import { formatVolume } from '../../src/luks/format-volume.js';
import { dumpHeader } from '../../src/luks/dump-header.js';
import { headerChecksum } from '../../src/luks/luks2-header.js';
import { isNbdcryptError } from '../../src/errors.js';
import type { Json, JsonObject } from '../../src/luks/luks2-metadata.js';

const HDR = 0x4000;

/** xorshift32: deterministic and fast. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

async function template(): Promise<Buffer> {
  const dev = new MemoryDevice(17 * 1024 * 1024);
  await formatVolume(dev, Buffer.from('fuzz'), { pbkdf: 'pbkdf2', pbkdfForceIterations: 1000, label: 'fuzz' });
  return dev.read(0, 2 * HDR);
}

function fixChecksum(region: Buffer, at: number): void {
  const copy = region.subarray(at, at + HDR);
  headerChecksum(copy, 'sha256').copy(copy, 448);
}

function setJson(region: Buffer, text: Buffer): void {
  for (const at of [0, HDR]) {
    region.fill(0, at + 4096, at + HDR);
    text.copy(region, at + 4096, 0, Math.min(text.length, HDR - 4096));
    fixChecksum(region, at);
  }
}

const weird: Json[] = [null, -1, 0, 1.5, 2 ** 53, 1e300, '', 'abc', '-1', '18446744073709551616', '99999999999999999999', '9007199254740993', '0x10', 'dynamic', [], {}, [1, 2], ['0', '0'], { x: 1 }, true, 'AAAA', '=', '32768', '4294967296'];

function paths(v: Json, prefix: string[] = [], out: string[][] = []): string[][] {
  out.push(prefix);
  if (typeof v === 'object' && v !== null) for (const [k, c] of Object.entries(v)) paths(c, [...prefix, k], out);
  return out;
}

function mutateStructured(obj: JsonObject, r: () => number): JsonObject {
  const clone = JSON.parse(JSON.stringify(obj)) as JsonObject;
  const all = paths(clone).filter((p) => p.length > 0);
  const edits = 1 + Math.floor(r() * 3);
  for (let i = 0; i < edits; i++) {
    const p = all[Math.floor(r() * all.length)]!;
    let parent: Json = clone;
    for (const k of p.slice(0, -1)) parent = (parent as JsonObject)[k] ?? {};
    if (typeof parent !== 'object' || parent === null) continue;
    const last = p[p.length - 1]!;
    const choice = r();
    if (choice < 0.2) delete (parent as JsonObject)[last];
    else if (choice < 0.3) (parent as JsonObject)[String(Math.floor(r() * 40))] = weird[Math.floor(r() * weird.length)]!;
    else (parent as JsonObject)[last] = weird[Math.floor(r() * weird.length)]!;
  }
  return clone;
}

async function readMustNotCrash(region: Buffer, what: string): Promise<'ok' | 'EBADHDR'> {
  const dev = new MemoryDevice(2 * HDR + 1024 * 1024);
  await dev.write(0, region);
  try {
    const text = await dumpHeader(dev);
    assert.equal(typeof text, 'string');
    return 'ok';
  } catch (e) {
    if (isNbdcryptError(e, 'EBADHDR')) return 'EBADHDR';
    throw new Error(`${what}: reader threw something other than EBADHDR: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
}

test('≥5,000 fuzzed binary and JSON headers never crash the reader', async () => {
  const base = await template();
  const json = JSON.parse(base.subarray(4096, base.indexOf(0, 4096)).toString()) as JsonObject;
  const r = rng(0x5eed1234);
  const counts = { ok: 0, EBADHDR: 0 };
  let cases = 0;
  // 1. Binary header mutations in the primary, secondary destroyed, checksum fixed half the time.
  for (let i = 0; i < 2500; i++, cases++) {
    const region = Buffer.from(base);
    region.fill(0, HDR, HDR + 4096);
    const n = 1 + Math.floor(r() * 8);
    for (let j = 0; j < n; j++) {
      const at = r() < 0.7 ? Math.floor(r() * 512) : Math.floor(r() * 4096);
      region[at] = r() < 0.5 ? region[at]! ^ (1 << Math.floor(r() * 8)) : Math.floor(r() * 256);
    }
    if (r() < 0.5) fixChecksum(region, 0);
    counts[await readMustNotCrash(region, `binary case ${i}`)]++;
  }
  // 2. JSON text mutations (both copies, re-checksummed).
  const text = Buffer.from(JSON.stringify(json));
  for (let i = 0; i < 1500; i++, cases++) {
    let t = Buffer.from(text);
    const kind = r();
    if (kind < 0.3) t = t.subarray(0, Math.floor(r() * t.length));
    else {
      const n = 1 + Math.floor(r() * 6);
      for (let j = 0; j < n; j++) {
        const at = Math.floor(r() * t.length);
        const c = '{}[]",:0123456789-ae \\\u0000\u00ff'.charCodeAt(Math.floor(r() * 24));
        if (r() < 0.5) t[at] = c;
        else t = Buffer.concat([t.subarray(0, at), Buffer.from([c]), t.subarray(at)]);
      }
    }
    const region = Buffer.from(base);
    setJson(region, t);
    counts[await readMustNotCrash(region, `json text case ${i}`)]++;
  }
  // 3. Structured JSON mutations: valid JSON, wrong types/values/missing fields.
  for (let i = 0; i < 1500; i++, cases++) {
    const region = Buffer.from(base);
    setJson(region, Buffer.from(JSON.stringify(mutateStructured(json, r))));
    counts[await readMustNotCrash(region, `json structure case ${i}`)]++;
  }
  assert.ok(cases >= 5000);
  assert.ok(counts.EBADHDR > 3000, `most mutations must be rejected (${JSON.stringify(counts)})`);
  assert.ok(counts.ok > 0, 'some mutations are harmless (e.g. inside the salt) and must still read');
});

test('validation errors name the failing field', async () => {
  const base = await template();
  const json = JSON.parse(base.subarray(4096, base.indexOf(0, 4096)).toString()) as JsonObject;
  const cases: Array<[(j: JsonObject) => void, RegExp]> = [
    [(j) => (((j.keyslots as JsonObject)['0'] as JsonObject).area as JsonObject).offset = 32768, /keyslots\.0\.area\.offset must be a string of decimal digits/],
    [(j) => ((j.segments as JsonObject)['0'] as JsonObject).offset = '18446744073709551616', /segments\.0\.offset value 18446744073709551616 overflows 64 bits/],
    [(j) => ((j.segments as JsonObject)['0'] as JsonObject).offset = '9007199254740993', /segments\.0\.offset .* larger than 2\^53/],
    [(j) => delete ((j.digests as JsonObject)['0'] as JsonObject).salt, /digests\.0\.salt is missing/],
    [(j) => ((j.config as JsonObject).json_size = '4096'), /config\.json_size 4096 does not match/],
    [(j) => ((j.digests as JsonObject)['0'] as JsonObject).keyslots = ['3'], /digests\.0\.keyslots refers to keyslot 3/],
    [(j) => (((j.keyslots as JsonObject)['0'] as JsonObject).kdf as JsonObject).extra = 1, /keyslots\.0\.kdf must have exactly the keys/],
    [(j) => delete j.tokens, /tokens is missing/],
  ];
  for (const [edit, want] of cases) {
    const j = JSON.parse(JSON.stringify(json)) as JsonObject;
    edit(j);
    const region = Buffer.from(base);
    setJson(region, Buffer.from(JSON.stringify(j)));
    const dev = new MemoryDevice(2 * HDR);
    await dev.write(0, region);
    await assert.rejects(dumpHeader(dev), (e) => isNbdcryptError(e, 'EBADHDR') && want.test(e.message), `expected ${want}`);
  }
});
