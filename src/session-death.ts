/**
 * The one-way "dead" state every RemoteSession shares: once a session has died it stays dead,
 * remembers the first reason, and tells each listener exactly once (a listener added after the
 * death hears of it in a microtask, never synchronously inside `whenDead`, so the caller's
 * state is set up before the callback runs).
 */
export class SessionDeath {
  private reason: Error | undefined;
  private readonly listeners: ((err: Error) => void)[] = [];

  /** The first reason the session died, or undefined while it lives. */
  get failure(): Error | undefined {
    return this.reason;
  }

  /**
   * `done` wrapped so that it is not called once the session has died: from then on the owner
   * re-sends what got no answer on the next session.
   */
  whileAlive<A extends unknown[]>(done: (...args: A) => void): (...args: A) => void {
    return (...args) => {
      if (!this.reason) done(...args);
    };
  }

  whenDead(listener: (err: Error) => void): void {
    const err = this.reason;
    if (err) queueMicrotask(() => listener(err));
    else this.listeners.push(listener);
  }

  /**
   * Records the death and tells the listeners; returns false (and does nothing) when the
   * session had already died, so the caller's own teardown runs once.
   */
  announce(err: Error, beforeListeners?: () => void): boolean {
    if (this.reason) return false;
    this.reason = err;
    beforeListeners?.();
    for (const l of this.listeners.splice(0)) l(err);
    return true;
  }
}
