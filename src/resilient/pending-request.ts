/**
 * One request of the resilient device from submission until it is settled. It is what the
 * session gets (a SessionRequest): when a session dies before answering, the same object
 * goes to the next session. One class, every field set in the constructor in the same
 * order, keeps the hot path monomorphic.
 */
import type { RequestKind, SessionRequest } from './session.js';

export interface RequestOwner {
  onDone(req: PendingRequest, err: Error | undefined, payload: Buffer | undefined): void;
}

export class PendingRequest implements SessionRequest {
  settled = false;
  /** Its id in the request book while a session has it (0: none yet). */
  sentId = 0;

  constructor(
    private readonly owner: RequestOwner,
    readonly kind: RequestKind,
    readonly offset: number,
    readonly length: number,
    readonly data: Buffer | undefined,
    readonly fua: boolean,
    /** `data` was given to us (released to requestBuffers when no longer needed), not lent. */
    readonly owned: boolean,
    /** The acknowledgement goes into the replay log. */
    readonly logged: boolean,
    /** Date.now() after which it fails with ETIMEDOUT; 0 = never. */
    readonly deadline: number,
    readonly resolve: (payload: Buffer | undefined) => void,
    readonly reject: (err: Error) => void,
  ) {}

  done(err: Error | undefined, payload: Buffer | undefined): void {
    this.owner.onDone(this, err, payload);
  }
}
