/**
 * What the resilient layer needs from a remote protocol: a session that can be opened again
 * after it dies. A session is one logical link to the remote disk (it may spread requests
 * over several connections or channels, as long as a flush covers the writes answered on
 * all of them); it knows nothing of reconnecting, replay or timeouts: that is
 * ResilientDevice's job, so every protocol (NBD, SFTP, ...) gets them the same way.
 */
import type { BlockCaps } from '../block/block-device.js';

export type RequestKind = 'read' | 'write' | 'flush' | 'trim' | 'zeroes';

/** One request handed to a session. */
export interface SessionRequest {
  readonly kind: RequestKind;
  readonly offset: number;
  readonly length: number;
  /** 'write': the payload, borrowed until `done` is called or the session dies. */
  readonly data: Buffer | undefined;
  /** 'write' / 'zeroes': durable before the reply (only asked when caps.fua). */
  readonly fua: boolean;
  /**
   * Called exactly once with the outcome (and a 'read' payload, which becomes the caller's),
   * unless the session dies first: from the moment a session announces its death it calls
   * no `done` any more, and the owner re-sends what got no answer on the next session.
   * An error here is the remote's answer (EIO, ENOSPC, ...), never a lost link.
   */
  done(err: Error | undefined, payload: Buffer | undefined): void;
}

/** What the remote says about its disk; compared on every reopen. */
export interface SessionFacts {
  readonly size: number;
  readonly caps: BlockCaps;
}

export interface RemoteSession {
  readonly facts: SessionFacts;
  /** Connections or channels the session spreads requests over. */
  readonly channels: number;
  /** Requests accepted but waiting for a free channel (for stats). */
  readonly queued: number;
  /** Hands a request over; after the session died it is silently ignored. */
  submit(req: SessionRequest): void;
  /**
   * `listener` is called once, synchronously, when the session dies (link dropped, remote
   * stalled, protocol broken); at once if it already has. A protocol violation carries the
   * code EPROTO: the resilient layer counts those separately from dropped links.
   */
  whenDead(listener: (err: Error) => void): void;
  /** Ends the session politely (the remote may finish what it was sent). */
  close(): void;
  /** Ends it at once; no `done` is called after this. */
  destroy(err?: Error): void;
}

/** Opens sessions to one remote, again and again; owns what they share (an SSH session). */
export interface SessionOpener {
  /** Secret-free name for logs and errors (the target URI). */
  readonly name: string;
  /** Rejects with NbdcryptError; EHOSTKEY, EAUTH and ENOEXPORT are never retried. */
  open(): Promise<RemoteSession>;
  /** Releases what the sessions shared; called once, after the last session ended. */
  close(): Promise<void>;
}
