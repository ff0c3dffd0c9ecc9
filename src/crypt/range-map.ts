/**
 * An ordered set of disjoint ranges keyed by their start, as a treap (a binary search tree
 * kept balanced in expectation by random priorities): find, insert and remove cost
 * O(log n) expected node visits. The ranges carry their own tree links, so the map allocates
 * nothing per entry. `visits` counts the nodes looked at, for tests that check costs.
 * Used by sector-locks.ts; knows nothing about locking.
 */

export interface RangeNode {
  start: number;
  end: number;
  /** Tree links, owned by RangeMap. */
  left?: RangeNode | undefined;
  right?: RangeNode | undefined;
  priority?: number;
}

export class RangeMap<N extends RangeNode> {
  private root: N | undefined;
  private count = 0;
  visits = 0;

  get size(): number {
    return this.count;
  }

  /** The range with the greatest start ≤ key. */
  floor(key: number): N | undefined {
    let n = this.root;
    let best: N | undefined;
    while (n) {
      this.visits++;
      if (n.start <= key) {
        best = n;
        n = n.right as N | undefined;
      } else n = n.left as N | undefined;
    }
    return best;
  }

  /** The range with the smallest start > key. */
  higher(key: number): N | undefined {
    let n = this.root;
    let best: N | undefined;
    while (n) {
      this.visits++;
      if (n.start > key) {
        best = n;
        n = n.left as N | undefined;
      } else n = n.right as N | undefined;
    }
    return best;
  }

  /** Adds `node`; no range in the map may start where it starts. */
  insert(node: N): void {
    node.left = node.right = undefined;
    node.priority = Math.random();
    const [l, r] = this.split(this.root, node.start);
    this.root = this.merge(this.merge(l, node), r);
    this.count++;
  }

  /** Removes the range that starts at `start`, if any. */
  remove(start: number): void {
    const [l, rest] = this.split(this.root, start);
    const [mid, r] = this.split(rest, start + 1);
    if (mid) this.count--;
    this.root = this.merge(l, r);
  }

  /** [ranges starting before key, ranges starting at or after key]. */
  private split(n: N | undefined, key: number): [N | undefined, N | undefined] {
    if (!n) return [undefined, undefined];
    this.visits++;
    if (n.start < key) {
      const [a, b] = this.split(n.right as N | undefined, key);
      n.right = a;
      return [n, b];
    }
    const [a, b] = this.split(n.left as N | undefined, key);
    n.left = b;
    return [a, n];
  }

  /** Joins two treaps where every start in `a` is below every start in `b`. */
  private merge(a: N | undefined, b: N | undefined): N | undefined {
    if (!a) return b;
    if (!b) return a;
    this.visits++;
    if (a.priority! > b.priority!) {
      a.right = this.merge(a.right as N | undefined, b);
      return a;
    }
    b.left = this.merge(a, b.left as N | undefined);
    return b;
  }
}
