/**
 * Writes a kernel block device's dirty page cache out (fsync on the device node) before it is
 * disconnected. The fsync runs on the libuv thread pool: its writes come back to this very
 * process as NBD requests, so blocking the event loop on it would deadlock. Best effort, with
 * a bound: a device that cannot be opened or flushed in time is reported and detached anyway.
 */
import { open } from 'node:fs/promises';
import { log } from '../log.js';

const FLUSH_LIMIT_MS = 60_000;

export async function flushBlockDevice(device: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const work = (async () => {
    const fh = await open(device, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  })();
  const limit = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), FLUSH_LIMIT_MS)));
  try {
    if ((await Promise.race([work, limit])) === 'timeout') log.warn(`${device}: flushing its page cache took over ${FLUSH_LIMIT_MS / 1000} s; detaching anyway`);
  } catch (e) {
    log.warn(`${device}: could not flush its page cache before detaching: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}
