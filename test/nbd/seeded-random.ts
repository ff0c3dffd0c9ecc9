/**
 * A small seedable PRNG for the fuzz tests, so a failing run can be replayed from its seed.
 * Not a test file itself.
 */

/** mulberry32: returns a function yielding uniform numbers in [0, 1). */
export function prng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
