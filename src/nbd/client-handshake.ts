/**
 * Runs the client handshake (client-handshake-step.ts) over a stream: buffers what the server
 * sends until the step function can decide, writes what it asks to send, and hands the bytes
 * past the handshake to the transmission phase. Bounded in time (a server that accepts but
 * never finishes must not stall a reconnect) and in memory (it waits for at most one option
 * reply of MAX_HANDSHAKE_MESSAGE bytes, plus whatever one stream chunk brings).
 * Spec: docs/formats.md (NBD handshake).
 */
import type { Duplex } from 'node:stream';
import { NbdcryptError } from '../errors.js';
import {
  clientHandshakeEnded,
  clientHandshakeStep,
  initialClientHandshakeState,
  type ClientHandshakeState,
  type NegotiatedExport,
} from './client-handshake-step.js';

export interface RemoteExportInfo extends NegotiatedExport {
  /** Bytes the server sent after the handshake (normally none). */
  leftover: Buffer;
}

/** A server that accepts but never finishes the handshake (stopped, wedged) must not stall a reconnect forever. */
export const HANDSHAKE_TIMEOUT_MS = 30_000;

/** Runs the handshake on a fresh stream; rejects with EPROTO, ENOEXPORT or ECONNECT (also on timeout). */
export function clientHandshake(stream: Duplex, exportName: string, where: string, timeoutMs = HANDSHAKE_TIMEOUT_MS): Promise<RemoteExportInfo> {
  const target = { exportName, where };
  let state: ClientHandshakeState = initialClientHandshakeState;
  let chunks: Buffer[] = [];
  let buffered = 0;
  // Bytes the step function needs before it can decide; below that, stepping again is pointless
  // (and re-concatenating on every small chunk would be quadratic).
  let needed = 0;
  let settle: (e: Error | undefined, info?: RemoteExportInfo) => void = () => undefined;

  const run = (): void => {
    let input = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    for (;;) {
      const s = clientHandshakeStep(state, input, target);
      state = s.state;
      input = input.subarray(s.consumed);
      for (const b of s.send) stream.write(b);
      const next = s.next;
      if (next.kind === 'continue') continue;
      if (next.kind === 'need-more') {
        chunks = input.length ? [input] : [];
        buffered = input.length;
        needed = next.bytes;
        return;
      }
      if (next.kind === 'fail') return settle(next.error);
      return settle(undefined, { ...next.export, leftover: input });
    }
  };
  const onData = (b: Buffer): void => {
    chunks.push(b);
    buffered += b.length;
    if (buffered < needed) return;
    try {
      run();
    } catch (e) {
      // The step function never throws on input; this only keeps a bug from escaping an event handler.
      settle(e instanceof Error ? e : new Error(String(e)));
    }
  };
  const onEnd = (): void => settle(clientHandshakeEnded(state, target));
  const onError = (e: Error): void => settle(clientHandshakeEnded(state, target, e));

  return new Promise<RemoteExportInfo>((resolve, reject) => {
    const timer = setTimeout(
      () => settle(new NbdcryptError('ECONNECT', `${where}: the NBD server did not complete the handshake within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    settle = (e, info) => {
      settle = () => undefined;
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
      if (e) reject(e);
      else resolve(info!);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
    onData(Buffer.alloc(0));
  });
}
