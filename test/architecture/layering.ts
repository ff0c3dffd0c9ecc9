/**
 * Reads the layering table of docs/ARCHITECTURE.md and checks import statements against it.
 * Pure functions over text, so the test can feed them made-up files as well as the real tree.
 * The table's rules (longest-prefix rows, `src/*.ts` for the leaf files, `src/**` for every row
 * under src/) are stated next to the table itself.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';

/** Row folder → what it may import (row folders or `src/**`). */
export type LayerTable = Map<string, string[]>;

export interface Violation {
  file: string;
  specifier: string;
  target: string;
  message: string;
}

const LEAVES = 'src/*.ts';

/** Parses the first table after the "## Layering table" heading ("folder | may import"). */
export function parseLayerTable(markdown: string): LayerTable {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^##\s+Layering table\s*$/.test(l));
  if (start < 0) throw new Error('docs/ARCHITECTURE.md has no "## Layering table" heading');
  let i = start + 1;
  while (i < lines.length && !lines[i]!.startsWith('|')) {
    if (/^##\s/.test(lines[i]!)) throw new Error('the "## Layering table" section has no table');
    i++;
  }
  const cells = (l: string) => l.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
  const header = cells(lines[i] ?? '').map((c) => c.toLowerCase());
  if (header[0] !== 'folder' || header[1] !== 'may import') {
    throw new Error(`the layering table's columns must be "folder | may import", found "${header.join(' | ')}"`);
  }
  const table: LayerTable = new Map();
  for (i += 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
    const [folder, mayImport] = cells(lines[i]!);
    const name = /^`([^`]+)`$/.exec(folder ?? '')?.[1];
    if (!name) throw new Error(`layering table row "${lines[i]}": the folder must be one name in backticks`);
    const targets = [...(mayImport ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    table.set(name, targets);
  }
  if (table.size === 0) throw new Error('the layering table has no rows');
  for (const [row, targets] of table) {
    for (const t of targets) {
      if (!table.has(t) && !t.endsWith('/**')) throw new Error(`layering table row \`${row}\` allows \`${t}\`, which is not a row of the table`);
    }
  }
  return table;
}

/** The row a repository path belongs to: the longest folder that contains it, or the leaf row. */
export function rowOf(table: LayerTable, path: string): string | undefined {
  if (table.has(LEAVES) && /^src\/[^/]+\.ts$/.test(path)) return LEAVES;
  let best: string | undefined;
  for (const row of table.keys()) {
    if (row === LEAVES) continue;
    if (path.startsWith(row + '/') && (best === undefined || row.length > best.length)) best = row;
  }
  return best;
}

/** Whether row `from` may import from row `to`, and if not, the rule it breaks. */
export function ruleBroken(table: LayerTable, from: string, to: string): string | undefined {
  if (from === to) return undefined;
  const allowed = table.get(from) ?? [];
  const ok = allowed.some((a) => a === to || (a.endsWith('/**') && to.startsWith(a.slice(0, -2))));
  return ok ? undefined : `\`${from}\` may import only ${allowed.length ? allowed.map((a) => `\`${a}\``).join(', ') : 'nothing outside itself'}`;
}

/**
 * Relative module specifiers of a TypeScript source: static `import … from`, `export … from`,
 * side-effect `import '…'` and dynamic `import('…')`. Lines that start a comment are ignored.
 */
export function importsOf(source: string): string[] {
  const code = source
    .split('\n')
    .map((l) => (/^\s*(\/\/|\/\*|\*)/.test(l) ? '' : l))
    .join('\n');
  const specs: string[] = [];
  const patterns = [/^\s*(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm, /^\s*import\s*['"]([^'"]+)['"]/gm, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of code.matchAll(re)) specs.push(m[1]!);
  return specs.filter((s) => s.startsWith('.'));
}

/** Repository path of a relative import from `file` (both repository paths; `.js` → `.ts`). */
export function resolveImport(file: string, specifier: string): string {
  return posix.normalize(posix.join(posix.dirname(file), specifier)).replace(/\.js$/, '.ts');
}

/** Checks one file's imports; `allowed(file, target)` exempts known exceptions. */
export function checkFile(table: LayerTable, file: string, source: string, allowed: (file: string, target: string) => boolean = () => false): Violation[] {
  const from = rowOf(table, file);
  const out: Violation[] = [];
  for (const specifier of importsOf(source)) {
    const target = resolveImport(file, specifier);
    if (from === undefined) {
      out.push({ file, specifier, target, message: `${file} lies in no row of the layering table in docs/ARCHITECTURE.md; add its folder as a row` });
      break;
    }
    const to = rowOf(table, target) ?? target.split('/')[0]!;
    const broken = ruleBroken(table, from, to);
    if (broken && !allowed(file, target)) out.push({ file, specifier, target, message: `${file} imports '${specifier}' (${to}): ${broken} (docs/ARCHITECTURE.md, Layering table)` });
  }
  return out;
}

/** Every .ts file under the given top-level folders, as repository paths with forward slashes. */
export function sourceFiles(root: string, tops: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(relative(root, p).split(sep).join('/'));
    }
  };
  for (const t of tops) walk(join(root, t));
  return out;
}

/** The repository root: the nearest directory above `from` that holds package.json. */
export function findRepoRoot(from: string): string {
  let dir = from;
  for (;;) {
    try {
      readFileSync(join(dir, 'package.json'));
      return dir;
    } catch {
      const up = dirname(dir);
      if (up === dir) throw new Error(`no package.json above ${from}`);
      dir = up;
    }
  }
}
