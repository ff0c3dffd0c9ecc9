/**
 * A small lock table over ciphertext sector ranges, used by EncryptedDevice so that a
 * read-modify-write of a partial sector never loses another writer's bytes and a read never
 * sees a half-done RMW. Entries are registered synchronously when a request arrives and an
 * entry waits only for the earlier entries it conflicts with (overlapping ranges, at least one
 * exclusive), so overlapping requests take effect in arrival order and disjoint ones never wait.
 * The table holds one entry per request in flight (the NBD front end bounds that), not one per
 * sector, so a 32 MiB request costs one entry.
 */

interface Entry {
  readonly start: number;
  readonly end: number;
  readonly exclusive: boolean;
  readonly done: Promise<void>;
}

export interface SectorLock {
  /** Resolves when every earlier conflicting entry has been released; undefined if none. */
  readonly ready: Promise<void> | undefined;
  release(): void;
}

export class SectorLocks {
  private readonly held = new Set<Entry>();

  /** Entries registered and not yet released (for close() and tests). */
  get size(): number {
    return this.held.size;
  }

  /** Registers sectors [start, end) now; call release() exactly once when the work is over. */
  acquire(start: number, end: number, exclusive: boolean): SectorLock {
    let deps: Promise<void>[] | undefined;
    for (const e of this.held) {
      if (e.start < end && start < e.end && (exclusive || e.exclusive)) (deps ??= []).push(e.done);
    }
    let resolve!: () => void;
    const entry: Entry = { start, end, exclusive, done: new Promise<void>((r) => (resolve = r)) };
    this.held.add(entry);
    let released = false;
    return {
      ready: deps === undefined ? undefined : deps.length === 1 ? deps[0] : Promise.all(deps).then(() => undefined),
      release: () => {
        if (released) return;
        released = true;
        this.held.delete(entry);
        resolve();
      },
    };
  }

  /** Resolves when every entry registered so far has been released. */
  async drain(): Promise<void> {
    await Promise.all([...this.held].map((e) => e.done));
  }
}
