#!/usr/bin/env node
// Run before `npm test`: checks that the Debian packages in scripts/debian-packages.txt are
// installed. As root on Debian it installs the missing ones (apt-get update, then install),
// so `npm test` sets up a fresh machine by itself; otherwise it prints the command and fails,
// because a missing tool is a test failure, never a silent skip.
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const list = readFileSync(new URL('./debian-packages.txt', import.meta.url), 'utf8')
  .split('\n')
  .map((l) => l.replace(/#.*/, '').trim())
  .filter(Boolean);

function missing() {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Status}\n', ...list], { encoding: 'utf8' });
  if (r.error) return null; // not a Debian system: nothing to check with
  const installed = new Set(
    r.stdout.split('\n').filter((l) => l.endsWith(' installed')).map((l) => l.split(' ')[0]),
  );
  return list.filter((p) => !installed.has(p));
}

const need = missing();
if (need === null) {
  console.warn('nbdcrypt: dpkg-query not found; not checking for the Debian packages the tests need');
  process.exit(0);
}
if (need.length === 0) process.exit(0);
const command = `apt-get update && apt-get install -y --no-install-recommends ${need.join(' ')}`;
if (process.getuid?.() !== 0) {
  console.error(`nbdcrypt: the tests need Debian packages that are missing; as root run:\n  ${command}`);
  process.exit(1);
}
console.error(`nbdcrypt: installing the Debian packages the tests need: ${need.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const args of [['update'], ['install', '-y', '--no-install-recommends', ...need]]) {
  const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`nbdcrypt: 'apt-get ${args[0]}' failed (status ${r.status}); install them by hand:\n  ${command}`);
    process.exit(1);
  }
}
