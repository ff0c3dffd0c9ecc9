/**
 * A lock table over ciphertext sector ranges, used by EncryptedDevice so that a
 * read-modify-write of a partial sector never loses another writer's bytes and a read never
 * sees a half-done RMW. Entries are registered synchronously when a request arrives, and an
 * entry waits only for earlier entries it conflicts with (overlapping, at least one
 * exclusive), so overlapping requests take effect in arrival order (FIFO: nobody is
 * overtaken, nobody starves) and disjoint ones never wait.
 *
 * The sector space is cut into segments at the entries' boundaries (range-map.ts). Each
 * segment remembers only its last exclusive entry and the shared entries registered after it.
 * A new entry waits, per segment it covers, for that last exclusive entry (and, if it is
 * exclusive itself, for those shared ones), then takes their place. The last exclusive entry
 * already waited for everything before it, so waiting for it covers the rest: N writers queued
 * on one sector form a chain, each link O(1), instead of each writer waiting for all N before
 * it. Cost of one entry: O(log n) to find its segments plus O(segments covered + shared
 * entries it replaces); each shared entry is replaced once per segment, so that is amortised.
 * `operations` counts this work, for tests.
 */
import { RangeMap, type RangeNode } from './range-map.js';

interface Holder {
  readonly start: number;
  readonly end: number;
  /** Earlier conflicting holders not yet released. */
  waitingOn: number;
  /** Later holders that wait for this one. */
  dependents: Holder[];
  released: boolean;
  /** Resolves `ready`, once waitingOn reaches 0. */
  resolve: (() => void) | undefined;
  /** The holder whose dependencies are being collected last marked this one (dedupe). */
  mark: Holder | undefined;
}

interface Segment extends RangeNode {
  /** The last exclusive holder registered over this segment, while not released. */
  writer: Holder | undefined;
  /** Shared holders registered after `writer`, while not released. */
  readers: Set<Holder>;
}

export interface SectorLock {
  /** Resolves when every earlier conflicting entry has been released; undefined if none. */
  readonly ready: Promise<void> | undefined;
  release(): void;
}

export class SectorLocks {
  private readonly segments = new RangeMap<Segment>();
  private held = 0;
  private work = 0;
  private drained: (() => void)[] = [];

  /** Entries registered and not yet released (for close() and tests). */
  get size(): number {
    return this.held;
  }

  /** Elementary steps done so far: tree nodes, segments, waits registered and ended. */
  get operations(): number {
    return this.work + this.segments.visits;
  }

  /** Registers sectors [start, end) now; call release() exactly once when the work is over. */
  acquire(start: number, end: number, exclusive: boolean): SectorLock {
    const h: Holder = { start, end, waitingOn: 0, dependents: [], released: false, resolve: undefined, mark: undefined };
    const after = (dep: Holder | undefined): void => {
      this.work++;
      if (!dep || dep.released || dep.mark === h) return;
      dep.mark = h;
      dep.dependents.push(h);
      h.waitingOn++;
    };
    for (const seg of this.cover(start, end)) {
      after(seg.writer);
      if (exclusive) {
        for (const r of seg.readers) after(r);
        seg.writer = h;
        if (seg.readers.size > 0) seg.readers = new Set();
      } else seg.readers.add(h);
    }
    this.held++;
    const ready = h.waitingOn === 0 ? undefined : new Promise<void>((r) => (h.resolve = r));
    return { ready, release: () => this.release(h) };
  }

  /** Resolves once no entry is held (callers stop registering new ones first). */
  drain(): Promise<void> {
    if (this.held === 0) return Promise.resolve();
    return new Promise((r) => this.drained.push(r));
  }

  private release(h: Holder): void {
    if (h.released) return;
    h.released = true;
    this.held--;
    for (const d of h.dependents) {
      this.work++;
      if (--d.waitingOn === 0) d.resolve?.();
    }
    h.dependents = [];
    // Forget h in its segments; drop segments that no longer hold anything.
    for (let seg = this.firstOverlapping(h.start); seg && seg.start < h.end; ) {
      this.work++;
      const next = this.segments.higher(seg.start);
      if (seg.writer === h) seg.writer = undefined;
      seg.readers.delete(h);
      if (!seg.writer && seg.readers.size === 0) this.segments.remove(seg.start);
      seg = next;
    }
    this.mergeAt(h.start);
    this.mergeAt(h.end);
    if (this.held === 0) for (const r of this.drained.splice(0)) r();
  }

  /** The segment containing `sector`, else the first one after it. */
  private firstOverlapping(sector: number): Segment | undefined {
    const f = this.segments.floor(sector);
    return f && f.end > sector ? f : this.segments.higher(sector);
  }

  /** The segments exactly covering [start, end), splitting and filling gaps as needed. */
  private cover(start: number, end: number): Segment[] {
    const out: Segment[] = [];
    const f = this.segments.floor(start);
    if (f && f.start < start && f.end > start) this.split(f, start);
    let next = this.firstOverlapping(start);
    for (let pos = start; pos < end; ) {
      this.work++;
      if (!next || next.start >= end) {
        out.push(this.fill(pos, end));
        break;
      }
      if (next.start > pos) {
        out.push(this.fill(pos, next.start));
        pos = next.start;
        continue;
      }
      if (next.end > end) this.split(next, end);
      out.push(next);
      pos = next.end;
      next = this.segments.higher(next.start);
    }
    return out;
  }

  private fill(start: number, end: number): Segment {
    const seg: Segment = { start, end, writer: undefined, readers: new Set() };
    this.segments.insert(seg);
    return seg;
  }

  /** Cuts `seg` at `at`; the upper part keeps the same holders. */
  private split(seg: Segment, at: number): void {
    this.work += seg.readers.size;
    const upper: Segment = { start: at, end: seg.end, writer: seg.writer, readers: new Set(seg.readers) };
    seg.end = at;
    this.segments.insert(upper);
  }

  /** Joins the segments meeting at `at` if they hold the same entries, so cuts do not pile up. */
  private mergeAt(at: number): void {
    const right = this.segments.floor(at);
    if (!right || right.start !== at) return;
    const left = this.segments.floor(at - 1);
    if (!left || left.end !== at || left.writer !== right.writer || left.readers.size !== right.readers.size) return;
    for (const r of left.readers) {
      this.work++;
      if (!right.readers.has(r)) return;
    }
    this.segments.remove(at);
    left.end = right.end;
  }
}
