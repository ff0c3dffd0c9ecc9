/**
 * docs/commands.md is the commands' own --help output (scripts/gen-commands-doc.js writes it):
 * the test fails when a help text changed and the file was not regenerated, naming the command
 * and how to regenerate. The checker itself is shown to fail on a file with one changed line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../peers/nbdcrypt.js';

const script = join(repoRoot, 'scripts', 'gen-commands-doc.js');

function check(file?: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [script, '--check', ...(file ? ['--file', file] : [])], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stderr: r.stderr };
}

test('docs/commands.md matches what every command prints for --help', () => {
  const r = check();
  assert.equal(r.status, 0, `docs/commands.md is out of date:\n${r.stderr}`);
});

test('the check names the command whose help differs and says how to regenerate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nbdcrypt-commands-doc-'));
  try {
    const doc = readFileSync(join(repoRoot, 'docs', 'commands.md'), 'utf8');
    const marker = '## nbdcrypt format\n\n```text\n';
    assert.ok(doc.includes(marker), 'docs/commands.md has a section for nbdcrypt format');
    const changed = join(dir, 'commands.md');
    writeFileSync(changed, doc.replace(marker, `${marker}A line the program does not print.\n`));
    const r = check(changed);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /'nbdcrypt format --help' differs/);
    assert.match(r.stderr, /npm run docs/);
    assert.doesNotMatch(r.stderr, /'nbdcrypt serve --help'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
