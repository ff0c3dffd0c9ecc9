/**
 * Code comments point at docs/ instead of at anything outside the repository, and those
 * pointers must stay true: every `docs/NAME.md` named in src/, bench/, peers/, test/ or native/
 * exists, and every section named with it ("docs/formats.md (NBD handshake)" or
 * "(docs/performance.md, Heap guard)") is a heading of that file. Also no comment points
 * outside the repository (absolute /work paths, notes next to the checkout, web addresses,
 * issue numbers); sources belong in docs/formats.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRepoRoot } from './layering.js';

const root = findRepoRoot(fileURLToPath(new URL('.', import.meta.url)));

function files(dir: string, exts: string[]): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (name === 'build' || name === 'node_modules') continue;
    if (statSync(p).isDirectory()) out.push(...files(p, exts));
    else if (exts.some((e) => name.endsWith(e))) out.push(p);
  }
  return out;
}

const sources = ['src', 'bench', 'peers', 'test', 'native'].flatMap((d) => files(join(root, d), ['.ts', '.c', '.h', '.sh', '.js']));

/** Headings of a markdown file, lower-cased. */
function headings(md: string): string[] {
  return [...md.matchAll(/^#{1,4}\s+(.+)$/gm)].map((m) => m[1]!.toLowerCase());
}

/** [file, section names] for each docs/ reference in a source text (comment line breaks joined). */
export function docReferences(text: string): [string, string[]][] {
  const flat = text.replace(/\n\s*(\*|\/\/|#)\s*/g, ' ');
  const refs: [string, string[]][] = [];
  for (const m of flat.matchAll(/docs\/([A-Za-z-]+\.md)(?:\s*\(([^()]{1,80})\)|,\s*([^(),.:;]{1,40}(?:,\s*[^(),.:;]{1,40})*)\))?/g)) {
    const names = (m[2] ?? m[3] ?? '').split(/[,;]/).map((s) => s.trim()).filter((s) => s !== '');
    refs.push([m[1]!, names]);
  }
  return refs;
}

test('every docs/ file and section named in the code exists', () => {
  const problems: string[] = [];
  let count = 0;
  for (const f of sources) {
    const where = relative(root, f).split(sep).join('/');
    if (where === 'test/architecture/doc-references.test.ts') continue;
    for (const [doc, names] of docReferences(readFileSync(f, 'utf8'))) {
      count++;
      const path = join(root, 'docs', doc);
      if (!existsSync(path)) {
        problems.push(`${where} names docs/${doc}, which does not exist`);
        continue;
      }
      const heads = headings(readFileSync(path, 'utf8'));
      for (const n of names) {
        if (!heads.some((h) => h.includes(n.toLowerCase()))) problems.push(`${where} names section "${n}" of docs/${doc}, which has no such heading`);
      }
    }
  }
  assert.ok(count > 20, `found only ${count} docs/ references; is the scan broken?`);
  assert.deepEqual(problems, [], problems.join('\n'));
});

test('no source file points outside the repository', () => {
  const outside = /\/work\/|\.\.\/shared\/|shared\/reference|DESIGN\.md|\b[Ii]ssues? #?\d|https?:\/\//;
  const problems = sources
    .filter((f) => !f.endsWith(join('architecture', 'doc-references.test.ts')))
    .flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .map((line, i) => [line, i] as const)
        .filter(([line]) => outside.test(line))
        .map(([line, i]) => `${relative(root, f)}:${i + 1}: ${line.trim()}`),
    );
  assert.deepEqual(problems, [], `state the reason in the comment or point at a docs/ section instead:\n${problems.join('\n')}`);
});

test('the reference scanner reads both forms, across wrapped comment lines', () => {
  assert.deepEqual(docReferences(' * Spec: docs/formats.md (NBD handshake, NBD peers).'), [['formats.md', ['NBD handshake', 'NBD peers']]]);
  assert.deepEqual(docReferences(' * bounded (docs/performance.md, Heap\n * guard). More.'), [['performance.md', ['Heap guard']]]);
  assert.deepEqual(docReferences(' * see docs/ARCHITECTURE.md.'), [['ARCHITECTURE.md', []]]);
});
