#!/usr/bin/env node
// Runs every compiled test file under dist/test with Node's own test runner, one file at a
// time (the integration tests start real servers and share the machine's two cores).
// Usage: node scripts/run-tests.js [substring ...]  — only files whose path contains one.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
// Local switches for the slow tests that need root and a lot of the machine (CI runs them
// all): each leaves its files out and says so, never silently.
const switches = [
  { env: 'NBDCRYPT_SKIP_VM', path: '/vm/' },
  { env: 'NBDCRYPT_SKIP_CEPH', path: '/ceph-' },
];
const skipped = (f) => switches.find((s) => process.env[s.env] === '1' && f.includes(s.path));
const files = collect('dist/test').filter((f) => {
  if (filters.length > 0 && !filters.some((s) => f.includes(s))) return false;
  const s = skipped(f);
  if (s) console.error(`run-tests: ${s.env}=1: leaving out ${f}`);
  return !s;
});
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
