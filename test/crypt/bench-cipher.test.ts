/**
 * `nbdcrypt bench cipher --json` runs end to end against the real `openssl speed` and prints
 * one JSON array of rows {engine, sectorSize, mbps, opensslMbps, ratio} on standard output,
 * followed by {cipher, engine, sectorSize, encryptMbps, decryptMbps} rows for the cipher specs
 * asked for with --ciphers; unknown subcommands and specs are usage errors. Figures are not asserted (the machine is shared):
 * only their shape and consistency.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { requireTool } from '../../peers/tools.js';

const bin = fileURLToPath(new URL('../../../bin/nbdcrypt.js', import.meta.url));

test('bench cipher --json prints one array of rows measured next to openssl speed', () => {
  requireTool('openssl', 'openssl');
  const r = spawnSync(process.execPath, [bin, 'bench', 'cipher', '--json', '--seconds', '1', '--sizes', '4096'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(
    rows.map((x) => `${x.engine}/${x.sectorSize}`),
    ['native/4096', 'node/4096'],
  );
  for (const row of rows) {
    assert.deepEqual(Object.keys(row).sort(), ['engine', 'mbps', 'opensslMbps', 'ratio', 'sectorSize']);
    for (const k of ['mbps', 'opensslMbps', 'ratio'] as const) assert.ok(typeof row[k] === 'number' && (row[k] as number) > 0, `${k} > 0`);
    assert.ok(Math.abs((row.ratio as number) - (row.mbps as number) / (row.opensslMbps as number)) < 1e-9);
  }
});

test('bench cipher --json --ciphers adds one row per spec with encrypt and decrypt MB/s (4 KiB sectors)', () => {
  const specs = ['twofish-cbc-essiv:sha256', 'serpent-xts-plain64'];
  const r = spawnSync(process.execPath, [bin, 'bench', 'cipher', '--json', '--seconds', '1', '--sizes', '4096', '--ciphers', specs.join(',')], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(
    rows.map((x) => x.cipher ?? `${x.engine}/${x.sectorSize}`),
    ['native/4096', 'node/4096', ...specs],
  );
  for (const row of rows.slice(2)) {
    assert.deepEqual(Object.keys(row).sort(), ['cipher', 'decryptMbps', 'encryptMbps', 'engine', 'sectorSize']);
    assert.equal(row.engine, 'native');
    assert.equal(row.sectorSize, 4096);
    for (const k of ['encryptMbps', 'decryptMbps'] as const) assert.ok(typeof row[k] === 'number' && (row[k] as number) > 0, `${k} > 0`);
  }
  const bad = spawnSync(process.execPath, [bin, 'bench', 'cipher', '--ciphers', 'cast5-cbc-plain'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--ciphers: cipher cast5-cbc-plain: block cipher 'cast5' is not supported/);
});

test('bench with an unknown subcommand is a usage error (exit 2)', () => {
  const r = spawnSync(process.execPath, [bin, 'bench', 'nope'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown subcommand 'nope'/);
  const h = spawnSync(process.execPath, [bin, 'bench', 'cipher', '--help'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(h.status, 0);
  assert.match(h.stdout, /^Usage: nbdcrypt bench cipher/);
});
