/**
 * What the NBD front end's connections share: the exports on offer, the server's counters and
 * the per-connection limits with their defaults.
 */
import type { BlockDevice } from '../block/block-device.js';
import type { ExportInfo } from './handshake.js';

export interface ServedExport {
  info: ExportInfo;
  device: BlockDevice;
}

export interface ServerStats {
  connections: number;
  requests: number;
  bytesRead: number;
  bytesWritten: number;
  inFlight: number;
  errors: number;
}

export interface ConnectionLimits {
  maxInFlightBytes: number;
  maxInFlightRequests: number;
  /** Stop reading while more than this many reply bytes wait in the socket's buffer. */
  maxQueuedReplyBytes: number;
  /** A client that has not finished the option phase this long after connecting is dropped. */
  handshakeTimeoutMs: number;
}

export const defaultLimits: ConnectionLimits = {
  maxInFlightBytes: 256 * 1024 * 1024,
  maxInFlightRequests: 1024,
  maxQueuedReplyBytes: 64 * 1024 * 1024,
  handshakeTimeoutMs: 30_000,
};
