/**
 * What the NBD server and client need from the command that builds them for their request
 * memory: the buffers requests are read into (block/buffer-pool.ts) and where socket reads
 * are reported as short-lived bytes (transient-buffers.ts). The defaults allocate fresh
 * buffers and report nothing, which is correct, only slower under sustained load.
 */
import { unpooled, type RequestBuffers } from './buffer-pool.js';
import { ignoreTransientBytes, type NoteTransientBytes } from '../transient-buffers.js';

export interface RequestIo {
  readonly buffers: RequestBuffers;
  readonly noteTransientBytes: NoteTransientBytes;
}

export const defaultRequestIo: RequestIo = { buffers: unpooled, noteTransientBytes: ignoreTransientBytes };
