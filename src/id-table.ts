/**
 * IdTable: the requests in flight on a hot path, each under an id the table hands out, kept
 * in a power-of-two array of slots (id i lives in slot i & mask).
 *
 * Why not a Map: a Map under steady add/delete rehashes into a fresh hash table every few
 * hundred operations, and V8 links each obsolete table to its successor (for iterators). Once
 * one table has reached the old generation (a full collection promotes whatever is live), its
 * dead copy keeps the next table, and the requests in it, alive through every scavenge; they
 * are promoted in turn, and so on: the old generation then fills with dead requests and full
 * collections run several times a second (docs/performance.md, Heap guard). Here a taken
 * slot is cleared at once, and the arrays are replaced only when they grow, with the old ones
 * wiped.
 *
 * Ids increase from the first id (1 unless given); an id whose slot is still taken by an older
 * entry is skipped, so the table never holds more than half its slots and a lookup is one
 * array read. Ids stay below 2^53 (at a million a second, for centuries) or below the limit
 * given, after which they start again at the first id: only then does an id come back (SFTP
 * request ids are 32 bits, so four billion requests later).
 */

const INITIAL_SLOTS = 64;

export class IdTable<T> {
  private ids: number[] = new Array<number>(INITIAL_SLOTS).fill(0);
  private values: (T | undefined)[] = new Array<T | undefined>(INITIAL_SLOTS).fill(undefined);
  private mask = INITIAL_SLOTS - 1;
  private nextId: number;
  private count = 0;

  constructor(
    private readonly idLimit = Number.MAX_SAFE_INTEGER,
    private readonly firstId = 1,
  ) {
    this.nextId = firstId;
  }

  get size(): number {
    return this.count;
  }

  /** Stores `value` under a new id and returns the id. */
  add(value: T): number {
    if ((this.count + 1) * 2 > this.values.length) this.grow();
    let id = this.nextId;
    for (;; id++) {
      if (id >= this.idLimit) id = this.firstId;
      if (this.values[id & this.mask] === undefined) break;
    }
    this.nextId = id + 1;
    const slot = id & this.mask;
    this.ids[slot] = id;
    this.values[slot] = value;
    this.count++;
    return id;
  }

  /** The value stored under `id`, or undefined (never stored, or taken). */
  get(id: number): T | undefined {
    const slot = id & this.mask;
    return this.ids[slot] === id ? this.values[slot] : undefined;
  }

  /** Removes and returns the value stored under `id`, or undefined. */
  take(id: number): T | undefined {
    const v = this.get(id);
    if (v !== undefined) {
      this.values[id & this.mask] = undefined;
      this.count--;
    }
    return v;
  }

  /** Every value, oldest id first (in id order once ids have started again). */
  inOrder(): T[] {
    const live: number[] = [];
    for (let s = 0; s < this.values.length; s++) if (this.values[s] !== undefined) live.push(this.ids[s]!);
    return live.sort((a, b) => a - b).map((id) => this.values[id & this.mask]!);
  }

  /** Removes everything; returns the values, oldest id first. */
  clear(): T[] {
    const all = this.inOrder();
    this.values.fill(undefined);
    this.count = 0;
    return all;
  }

  private grow(): void {
    const oldIds = this.ids;
    const oldValues = this.values;
    const slots = oldValues.length * 2;
    this.ids = new Array<number>(slots).fill(0);
    this.values = new Array<T | undefined>(slots).fill(undefined);
    this.mask = slots - 1;
    // Distinct slots under the old mask stay distinct under the wider one.
    for (let s = 0; s < oldValues.length; s++) {
      const v = oldValues[s];
      if (v === undefined) continue;
      const id = oldIds[s]!;
      this.ids[id & this.mask] = id;
      this.values[id & this.mask] = v;
    }
    // The dead array must not keep the values alive through scavenges (see above).
    oldValues.fill(undefined);
  }
}
