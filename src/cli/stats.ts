/**
 * The one-line activity report of `nbdcrypt serve`: printed every `--stats-interval` seconds
 * and whenever the process gets SIGUSR1 (`kill -USR1 PID`). Rates are over the time since
 * the previous line; counters are read from the NBD server (requests, bytes, requests in
 * flight), the sector cache (hits, misses) and the remote client (reconnects, queue,
 * unflushed bytes). Reading the counters costs nothing on the data path.
 */
import type { SectorCache } from '../block/sector-cache.js';
import { log } from '../log.js';
import type { ResilientDevice } from '../resilient/resilient-device.js';
import type { ServerStats } from '../nbd/server.js';

export interface StatsSources {
  server: ServerStats;
  cache?: SectorCache;
  client?: ResilientDevice;
}

interface Snapshot {
  at: number;
  requests: number;
  bytesRead: number;
  bytesWritten: number;
  hits: number;
  misses: number;
}

const MB = 1e6;

export class StatsReporter {
  private last: Snapshot;
  private timer: NodeJS.Timeout | undefined;
  private readonly onSignal = (): void => this.print();

  constructor(private readonly src: StatsSources) {
    this.last = this.snapshot();
  }

  /** Starts the interval (0 = none) and the SIGUSR1 handler. */
  start(intervalSeconds: number): void {
    if (intervalSeconds > 0) {
      this.timer = setInterval(() => this.print(), intervalSeconds * 1000);
      this.timer.unref();
    }
    process.on('SIGUSR1', this.onSignal);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    process.off('SIGUSR1', this.onSignal);
  }

  private snapshot(): Snapshot {
    const s = this.src.server;
    const c = this.src.cache?.stats;
    return { at: Date.now(), requests: s.requests, bytesRead: s.bytesRead, bytesWritten: s.bytesWritten, hits: c?.hits ?? 0, misses: c?.misses ?? 0 };
  }

  /** The line for the interval since the previous call (also used by tests). */
  line(): string {
    const now = this.snapshot();
    const prev = this.last;
    this.last = now;
    const secs = Math.max((now.at - prev.at) / 1000, 0.001);
    const rate = (bytes: number) => ((bytes / MB) / secs).toFixed(1);
    const parts = [
      `stats: ${now.requests - prev.requests} requests in ${secs.toFixed(1)} s (${now.requests} total)`,
      `read ${rate(now.bytesRead - prev.bytesRead)} MB/s`,
      `write ${rate(now.bytesWritten - prev.bytesWritten)} MB/s`,
    ];
    const cache = this.src.cache;
    if (cache) {
      const lookups = now.hits - prev.hits + (now.misses - prev.misses);
      const hitRate = lookups === 0 ? '-' : `${(((now.hits - prev.hits) / lookups) * 100).toFixed(0)}%`;
      parts.push(`cache hit ${hitRate} (${(cache.stats.bytes / 2 ** 20).toFixed(0)} MiB held)`);
    } else {
      parts.push('cache off');
    }
    parts.push(`queue depth ${this.src.server.inFlight}`);
    const client = this.src.client;
    if (client) parts.push(`remote queue ${client.queued}, unflushed ${(client.replayBytes / 2 ** 20).toFixed(1)} MiB, reconnects ${client.reconnects}`);
    else parts.push('reconnects 0');
    const m = process.memoryUsage();
    parts.push(`rss ${(m.rss / 2 ** 20).toFixed(0)} MiB (buffers ${(m.arrayBuffers / 2 ** 20).toFixed(0)} MiB)`);
    return parts.join(', ');
  }

  print(): void {
    log.info(this.line());
  }
}
