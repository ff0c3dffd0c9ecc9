/**
 * One byte-stream interface for every way of reaching a remote nbd-server (DESIGN.md
 * "Layers and rooms": transport knows nothing of NBD). A Transport opens a fresh Duplex per
 * NBD connection; transports that share a session (one SSH connection carrying many
 * channels) re-establish it when it drops and release it on close().
 * See ../shared/reference/peers.md §7 for the ssh2 side.
 */
import type { Duplex } from 'node:stream';

export interface Transport {
  /** A short, secret-free description for logs and errors, e.g. "ssh://alice@host:22 → 127.0.0.1:10809". */
  readonly description: string;
  /** Opens one new byte stream to the nbd-server; rejects with NbdcryptError (ECONNECT, EAUTH, EHOSTKEY). */
  open(): Promise<Duplex>;
  /** Closes shared sessions; streams already opened are destroyed. */
  close(): Promise<void>;
}

/** Default connect timeout (ms) for tcp, unix and ssh transports. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
