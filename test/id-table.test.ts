import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { IdTable } from '../src/id-table.js';

test('ids are handed out once, and values are found, taken and listed oldest first', () => {
  const t = new IdTable<string>();
  const a = t.add('a');
  const b = t.add('b');
  const c = t.add('c');
  assert.ok(a < b && b < c);
  assert.equal(t.size, 3);
  assert.equal(t.get(b), 'b');
  assert.equal(t.take(b), 'b');
  assert.equal(t.take(b), undefined, 'a taken id is gone');
  assert.equal(t.get(b), undefined);
  assert.equal(t.get(12345), undefined, 'an id never handed out');
  assert.deepEqual(t.inOrder(), ['a', 'c']);
  const d = t.add('d');
  assert.ok(d > c, 'ids are not reused');
  assert.deepEqual(t.clear(), ['a', 'c', 'd']);
  assert.equal(t.size, 0);
  assert.equal(t.get(a), undefined);
});

test('a long-lived entry keeps its slot: later ids skip it, and growing keeps every entry', () => {
  const t = new IdTable<number>();
  const stuck = t.add(-1);
  const live: number[] = [];
  // Far more ids than slots go by while `stuck` waits; at times many are in flight at once.
  for (let i = 0; i < 10_000; i++) {
    live.push(t.add(i));
    if (live.length > (i % 500 < 250 ? 8 : 300)) assert.notEqual(t.take(live.shift()!), undefined);
    assert.equal(t.get(stuck), -1);
  }
  assert.equal(t.size, live.length + 1);
  for (const id of live) assert.equal(typeof t.get(id), 'number');
  assert.deepEqual(t.inOrder(), [-1, ...live.map((id) => t.get(id))]);
});

test('with a limit, ids start again at the first id and skip the ones still in flight', () => {
  const t = new IdTable<string>(8, 0);
  const held = t.add('held'); // id 0, never answered
  const seen: number[] = [];
  for (let i = 0; i < 20; i++) {
    const id = t.add(`v${i}`);
    seen.push(id);
    assert.equal(t.take(id), `v${i}`);
  }
  assert.equal(held, 0);
  assert.ok(seen.every((id) => id > 0 && id < 8), `ids ${seen.join(',')}`);
  assert.deepEqual(seen.slice(0, 9), [1, 2, 3, 4, 5, 6, 7, 1, 2]);
  assert.equal(t.get(0), 'held');
});

/**
 * The reason the table exists: after one full collection, steady add/take through a Map keeps
 * the young generation's requests alive through scavenges (V8 links each obsolete hash table
 * to the next), so the old generation fills and full collections follow one another; through
 * the IdTable they do not. The same churn runs both ways in a child with --trace-gc, and the
 * Map run is the control that shows the measurement can tell them apart.
 */
test('churn after a full collection does not keep garbage alive, as a Map does', () => {
  const tableUrl = new URL('../src/id-table.js', import.meta.url).href;
  const churn = (kind: 'map' | 'table'): number => {
    const script = `
      const { IdTable } = await import(${JSON.stringify(tableUrl)});
      const kind = ${JSON.stringify(kind)};
      const t = kind === 'map' ? new Map() : new IdTable();
      let next = 1;
      const add = (v) => { if (kind === 'table') return t.add(v); t.set(next, v); return next++; };
      const take = (id) => (kind === 'table' ? t.take(id) : t.delete(id));
      const live = [];
      const round = () => {
        for (let i = 0; i < 1000; i++) {
          live.push(add({ payload: new Array(16), done: () => i }));
          if (live.length > 16) take(live.shift());
        }
      };
      for (let r = 0; r < 200; r++) round();
      globalThis.gc();
      console.log('after-gc');
      for (let r = 0; r < 2000; r++) round();
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '--trace-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const after = r.stdout.slice(r.stdout.indexOf('after-gc'));
    return (after.match(/Mark-Compact/g) ?? []).length;
  };
  const viaMap = churn('map');
  const viaTable = churn('table');
  assert.ok(viaMap >= 5, `control: a Map should show chained promotion (${viaMap} full collections after the first)`);
  assert.ok(viaTable <= 1, `${viaTable} full collections after the first through the IdTable`);
});

