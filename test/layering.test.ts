/**
 * The top-level folders import only downward: shipped code (src/) never imports test/, bench/
 * or peers/ (none of them is shipped); peers/ (the peer starters tests and benches share) never
 * imports test/ or bench/; bench/ never imports test/. Read from the TypeScript sources, so a
 * new import that breaks the rule fails here before it ships.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = process.cwd();
const forbidden: Record<string, string[]> = { src: ['test', 'bench', 'peers'], peers: ['test', 'bench'], bench: ['test'] };

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...tsFiles(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Relative module specifiers of static imports, re-exports and dynamic imports. */
function specifiers(source: string): string[] {
  return [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
}

test('src/, peers/ and bench/ import nothing from the folders above them', () => {
  const violations: string[] = [];
  let imports = 0;
  for (const [folder, banned] of Object.entries(forbidden)) {
    for (const file of tsFiles(join(root, folder))) {
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        imports++;
        const top = relative(root, resolve(dirname(file), spec)).split('/')[0]!;
        if (banned.includes(top)) violations.push(`${relative(root, file)} imports ${spec}`);
      }
    }
  }
  assert.ok(imports > 100, `only ${imports} imports found: is the working directory the repository?`);
  assert.deepEqual(violations, []);
});

test('the import scanner sees static, re-export and dynamic imports', () => {
  const src = `import { a } from '../test/x.js';\nexport { b } from "../../bench/y.js";\nconst c = await import('../peers/z.js');\nimport 'node:fs';`;
  assert.deepEqual(specifiers(src), ['../test/x.js', '../../bench/y.js', '../peers/z.js']);
});
