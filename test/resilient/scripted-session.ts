/**
 * A scripted in-memory remote for the resilient layer's unit tests (not a test file): a
 * disk that loses what was not flushed when it "crashes", and sessions that answer at once,
 * hold requests until told, or die on cue. Every request a session receives is recorded,
 * so tests can check what was replayed, in which order, on which session.
 */
import type { BlockCaps } from '../../src/block/block-device.js';
import { NbdcryptError } from '../../src/errors.js';
import type { RemoteSession, SessionFacts, SessionOpener, SessionRequest } from '../../src/resilient/session.js';

export const CAPS: BlockCaps = { flush: true, fua: true, trim: true, zeroes: true, multiConn: true, readOnly: false };

/** The remote disk: `disk` is what reads see, `durable` what survives a crash. */
export class FakeDisk {
  disk: Buffer;
  durable: Buffer;
  constructor(readonly size: number) {
    this.disk = Buffer.alloc(size);
    this.durable = Buffer.alloc(size);
  }

  apply(req: SessionRequest): Buffer | undefined {
    switch (req.kind) {
      case 'read':
        return Buffer.from(this.disk.subarray(req.offset, req.offset + req.length));
      case 'write':
        req.data!.copy(this.disk, req.offset);
        break;
      case 'zeroes':
      case 'trim':
        this.disk.fill(0, req.offset, req.offset + req.length);
        break;
      case 'flush':
        this.disk.copy(this.durable);
        break;
    }
    if (req.fua) this.disk.copy(this.durable);
    return undefined;
  }

  /** The remote restarts: what it acknowledged but never flushed is gone. */
  crash(): void {
    this.durable.copy(this.disk);
  }
}

export type Mode = 'auto' | 'hold';

export class ScriptedSession implements RemoteSession {
  readonly channels = 1;
  readonly queued = 0;
  /** Every request received, in order. */
  readonly received: SessionRequest[] = [];
  /** Requests received and not answered yet (mode 'hold'). */
  readonly held: SessionRequest[] = [];
  dead: Error | undefined;
  private readonly listeners: ((e: Error) => void)[] = [];
  /** Keeps the event loop alive while the session lives, as a real socket does. */
  private readonly keepAlive = setInterval(() => {}, 1000);

  constructor(
    readonly facts: SessionFacts,
    private readonly remote: FakeDisk,
    public mode: Mode,
    readonly index: number,
  ) {}

  submit(req: SessionRequest): void {
    if (this.dead) return;
    this.received.push(req);
    if (this.mode === 'auto') setImmediate(() => this.answer(req));
    else this.held.push(req);
  }

  /** Answers `req` (applying it to the disk), or with `err`. */
  answer(req: SessionRequest, err?: Error): void {
    if (this.dead) return;
    const i = this.held.indexOf(req);
    if (i >= 0) this.held.splice(i, 1);
    if (err) return req.done(err, undefined);
    req.done(undefined, this.remote.apply(req));
  }

  answerAll(): void {
    for (const r of [...this.held]) this.answer(r);
  }

  whenDead(listener: (err: Error) => void): void {
    if (this.dead) queueMicrotask(() => listener(this.dead!));
    else this.listeners.push(listener);
  }

  die(err: Error = new NbdcryptError('EIO', 'link cut by the test')): void {
    if (this.dead) return;
    this.dead = err;
    clearInterval(this.keepAlive);
    for (const l of this.listeners.splice(0)) l(err);
  }

  close(): void {
    this.die(new NbdcryptError('ECLOSED', 'closed'));
  }

  destroy(err?: Error): void {
    this.die(err);
  }
}

/** Opens ScriptedSessions on one FakeDisk; `script` may change each new session or refuse to open. */
export class ScriptedOpener implements SessionOpener {
  readonly name = 'scripted://disk';
  readonly sessions: ScriptedSession[] = [];
  /** Date.now() of every open() call. */
  readonly opens: number[] = [];
  closed = false;
  /** Runs on every open (after the first): throw to fail the attempt, or adjust the session. */
  script: (s: ScriptedSession) => void = () => {};
  mode: Mode = 'auto';

  constructor(
    readonly remote: FakeDisk,
    public facts: SessionFacts = { size: remote.size, caps: CAPS },
  ) {}

  get current(): ScriptedSession {
    return this.sessions[this.sessions.length - 1]!;
  }

  async open(): Promise<RemoteSession> {
    this.opens.push(Date.now());
    const s = new ScriptedSession(this.facts, this.remote, this.mode, this.sessions.length);
    try {
      if (this.sessions.length > 0) this.script(s);
    } catch (e) {
      s.die();
      throw e;
    }
    this.sessions.push(s);
    return s;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
