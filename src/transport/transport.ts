/**
 * One byte-stream interface for every way of reaching a remote nbd-server (transport knows
 * nothing of NBD: docs/ARCHITECTURE.md). A Transport opens a fresh Duplex per
 * NBD connection; transports that share a session (one SSH connection carrying many
 * channels) re-establish it when it drops and release it on close().
 * The ssh2 side: docs/formats.md (SSH).
 */
import type { Duplex } from 'node:stream';

export interface Transport {
  /** A short, secret-free description for logs and errors, e.g. "ssh://alice@host:22 → 127.0.0.1:10809". */
  readonly description: string;
  /**
   * true when every chunk its streams deliver is a view of a Buffer the transport already
   * reported as transient (../transient-buffers.ts), as the SSH transport's channel data are
   * slices of its socket reads: a reader must not report those bytes again, or the heap guard
   * collects twice as often as the garbage needs.
   */
  readonly reportsReadBuffers?: boolean;
  /** Opens one new byte stream to the nbd-server; rejects with NbdcryptError (ECONNECT, EAUTH, EHOSTKEY). */
  open(): Promise<Duplex>;
  /** Closes shared sessions; streams already opened are destroyed. */
  close(): Promise<void>;
}

/** Default connect timeout (ms) for tcp, unix and ssh transports. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
