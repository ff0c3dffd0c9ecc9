/**
 * Imports only go downward: every relative import in src/, bench/, peers/ and test/ must be
 * allowed by the layering table of docs/ARCHITECTURE.md (which also says, for example, that
 * src/ never imports test/, bench/ or peers/, and bench/ never imports test/). A failure names
 * the file, the import and the rule it breaks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkFile, findRepoRoot, importsOf, parseLayerTable, sourceFiles } from './layering.js';

const root = findRepoRoot(fileURLToPath(new URL('.', import.meta.url)));
const architecture = readFileSync(join(root, 'docs', 'ARCHITECTURE.md'), 'utf8');

/**
 * Imports that break the table today and are being removed by work in progress. Each entry is
 * one file and one imported file. Keep it short and empty it: an entry that no longer matches
 * an import fails the test, so a fixed import cannot leave a stale exception behind.
 */
const knownExceptions: { file: string; target: string; why: string }[] = [];

test('every import in src/, bench/, peers/ and test/ follows the layering table of docs/ARCHITECTURE.md', () => {
  const table = parseLayerTable(architecture);
  const used = new Set<number>();
  const allowed = (file: string, target: string): boolean => {
    const i = knownExceptions.findIndex((e) => e.file === file && e.target === target);
    if (i >= 0) used.add(i);
    return i >= 0;
  };
  const files = sourceFiles(root, ['src', 'bench', 'peers', 'test']);
  assert.ok(files.length > 50, `found only ${files.length} source files under ${root}`);
  const violations = files.flatMap((f) => checkFile(table, f, readFileSync(join(root, f), 'utf8'), allowed));
  assert.deepEqual(
    violations.map((v) => v.message),
    [],
    `${violations.length} import(s) against the layering table:\n${violations.map((v) => `  ${v.message}`).join('\n')}`,
  );
  const stale = knownExceptions.filter((_, i) => !used.has(i));
  assert.deepEqual(
    stale,
    [],
    `known exceptions that no longer match an import; remove them from knownExceptions in test/architecture/import-direction.test.ts:\n${stale.map((e) => `  ${e.file} -> ${e.target}`).join('\n')}`,
  );
});

test('the checker reports an upward import with file, import and rule, and accepts a downward one', () => {
  const table = parseLayerTable(architecture);
  const up = checkFile(table, 'src/block/example.ts', "import { EncryptedDevice } from '../crypt/encrypted-device.js';\n");
  assert.equal(up.length, 1);
  assert.match(up[0]!.message, /src\/block\/example\.ts imports '\.\.\/crypt\/encrypted-device\.js' \(src\/crypt\): `src\/block` may import only `src\/\*\.ts`/);
  assert.deepEqual(checkFile(table, 'src/crypt/example.ts', "import type { BlockDevice } from '../block/block-device.js';\n"), []);
  // Built from pieces so that this file's own import scan does not see these examples.
  const dynamicImport = 'import' + "('../../../peers/tools.js')";
  const intoTests = checkFile(table, 'src/cli/bench/example.ts', `const p = await ${dynamicImport};\n`);
  assert.equal(intoTests.length, 1, 'the shipped src/cli/bench must not import peers/');
  const benchIntoTest = checkFile(table, 'bench/example.ts', "import {\n  remoteVolume,\n} from '../test/integration/x.js';\n");
  assert.equal(benchIntoTest.length, 1, 'bench/ must not import test/');
  assert.match(checkFile(table, 'src/newlayer/x.ts', "import { log } from '../log.js';\n")[0]!.message, /lies in no row/);
});

test('import parsing: static, type-only, re-export, side-effect and dynamic imports; comments are not imports', () => {
  const src = [
    "import { a } from './a.js';",
    "import type { B } from '../b.js';",
    "export { c } from './c.js';",
    "import './d.js';",
    'const e = await ' + 'import' + "('./e.js');",
    ' * e.g. import { x } from "./in-a-comment.js"',
    "// import { y } from './commented.js';",
    "import { readFileSync } from 'node:fs';",
  ].join('\n');
  assert.deepEqual(importsOf(src).sort(), ['../b.js', './a.js', './c.js', './d.js', './e.js']);
});

test('the layering table rejects a row that allows an unknown folder', () => {
  const md = '## Layering table\n\n| folder | may import |\n|---|---|\n| `src/a` | `src/b` |\n';
  assert.throws(() => parseLayerTable(md), /allows `src\/b`, which is not a row/);
});
