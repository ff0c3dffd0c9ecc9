/**
 * A private single-host Ceph cluster (Debian 12's ceph 16 "pacific") for tests and benches:
 * one monitor and N OSDs on 127.0.0.1, no manager, no authentication, one config file and
 * every data, socket, PID and log file under a scratch directory (never /etc/ceph or
 * /var/lib/ceph). The OSDs use memstore (objects in RAM), so a cluster starts in seconds and
 * leaves nothing on disk. Each daemon runs in the foreground, tracked and stopped by PID.
 *
 * A memstore OSD keeps only what it had at mkfs time across a crash: killed and started
 * again it comes back empty and the cluster backfills it from the other replica, which is
 * what a replicated pool is for. See docs/scaling-out.md.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, requireTool, run, scratchDir, startProcess, waitFor, type Proc } from './tools.js';

export interface CephOptions {
  /** Number of OSDs (default 2). */
  osds?: number;
  /** Replicated pool created and initialised for RBD (default 'nbd'). */
  pool?: string;
  /** Copies of each object (default 2, one per OSD with `osd crush chooseleaf type = 0`). */
  size?: number;
  /** Placement groups of the pool (default 8). */
  pgs?: number;
  /** Capacity each memstore OSD reports, in bytes (default 2 GiB; RAM is used as written). */
  osdBytes?: number;
}

export interface PgState {
  pgid: string;
  state: string;
  up: number[];
  acting: number[];
}

export interface CephCluster {
  dir: string;
  /** The cluster's config file: what every client (ceph, rbd, qemu's rbd driver) is given. */
  conf: string;
  pool: string;
  osds: number;
  /** `ceph -c CONF ARGS...` (bounded); returns standard output. */
  ceph(args: string[], timeoutMs?: number): string;
  /** `rbd -c CONF ARGS...` (bounded); returns standard output. */
  rbd(args: string[], timeoutMs?: number): string;
  /** SIGKILLs OSD `id` (a crash); the monitor still lists it up until it boots again. */
  killOsd(id: number): Promise<void>;
  /** Starts OSD `id` again and waits until the monitor has it up as a new instance. */
  startOsd(id: number): Promise<void>;
  /** Tells the monitor at once that OSD `id` is down (after killOsd). */
  markDown(id: number): void;
  /** State of every placement group of the pool, asked of the OSDs (`ceph pg ID query`). */
  pgStates(): PgState[];
  /** Waits until every placement group is active+clean on `size` OSDs. */
  waitClean(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

interface OsdInfo {
  osd: number;
  up: number;
  up_from: number;
}

function cephConf(dir: string, fsid: string, monPort: number, osdBytes: number, size: number): string {
  return [
    '[global]',
    `fsid = ${fsid}`,
    `mon host = v2:127.0.0.1:${monPort}`,
    'mon initial members = a',
    'public network = 127.0.0.0/8',
    'ms bind msgr1 = false',
    'ms bind ipv6 = false',
    'auth cluster required = none',
    'auth service required = none',
    'auth client required = none',
    `run dir = ${dir}/run`,
    `crash dir = ${dir}/crash`,
    `pid file = ${dir}/run/$name.pid`,
    `log file = ${dir}/log/$name.log`,
    // One host: replicas go to different OSDs, not different hosts.
    'osd crush chooseleaf type = 0',
    `osd pool default size = ${size}`,
    // Two OSDs: I/O continues while one restarts (production pools use size 3, min size 2).
    'osd pool default min size = 1',
    'osd pool default pg autoscale mode = off',
    'mon allow pool size one = true',
    // With two OSDs only one peer can report a dead one.
    'mon osd min down reporters = 1',
    '[mon]',
    `mon data = ${dir}/mon/$name`,
    `mon cluster log file = ${dir}/log/cluster.log`,
    `admin socket = ${dir}/run/$name.asok`,
    '[osd]',
    `osd data = ${dir}/osd/$id`,
    'osd objectstore = memstore',
    `memstore device bytes = ${osdBytes}`,
    `admin socket = ${dir}/run/$name.asok`,
    '[client]',
    // Clients (ceph, rbd, qemu-nbd) come and go concurrently: one socket per process.
    `admin socket = ${dir}/run/$name.$pid.asok`,
    'log to file = false',
    '',
  ].join('\n');
}

export async function startCeph(opts: CephOptions = {}): Promise<CephCluster> {
  const monBin = requireTool('ceph-mon', 'ceph-mon');
  const osdBin = requireTool('ceph-osd', 'ceph-osd');
  const cephBin = requireTool('ceph', 'ceph-common');
  const rbdBin = requireTool('rbd', 'ceph-common');
  const monmaptool = requireTool('monmaptool', 'ceph-base');
  const osds = opts.osds ?? 2;
  const pool = opts.pool ?? 'nbd';
  const size = opts.size ?? 2;
  const scratch = scratchDir('nbdcrypt-ceph-');
  const dir = scratch.path;
  for (const d of ['run', 'log', 'crash', 'mon/mon.a', 'osd']) mkdirSync(join(dir, d), { recursive: true });
  const fsid = randomUUID();
  const monPort = await freePort();
  const conf = join(dir, 'ceph.conf');
  writeFileSync(conf, cephConf(dir, fsid, monPort, opts.osdBytes ?? 2 * 1024 ** 3, size));

  const procs = new Map<string, Proc>();
  const ceph = (args: string[], timeoutMs = 60_000): string =>
    run(cephBin, ['-c', conf, '--connect-timeout', '20', ...args], { timeoutMs }).stdout;
  const rbd = (args: string[], timeoutMs = 120_000): string => run(rbdBin, ['-c', conf, ...args], { timeoutMs }).stdout;
  const osdDump = (): OsdInfo[] => (JSON.parse(ceph(['osd', 'dump', '-f', 'json'])) as { osds: OsdInfo[] }).osds;

  const daemon = (name: string, bin: string, args: string[]): Proc => {
    const p = startProcess(bin, ['-c', conf, '-f', ...args]);
    procs.set(name, p);
    return p;
  };
  const exitedEarly = (name: string): void => {
    const p = procs.get(name);
    if (p && p.child.exitCode !== null) throw new Error(`${name} exited (status ${p.child.exitCode}): ${p.stderr().trim().split('\n').slice(-3).join(' / ')}; see ${dir}/log`);
  };

  const startOsd = async (id: number): Promise<void> => {
    const before = osdDump().find((o) => o.osd === id)?.up_from ?? 0;
    daemon(`osd.${id}`, osdBin, ['-i', String(id)]);
    await waitFor(`osd.${id} to boot and be marked up`, () => {
      exitedEarly(`osd.${id}`);
      const o = osdDump().find((x) => x.osd === id);
      return o !== undefined && o.up === 1 && o.up_from > before;
    }, 60_000, 250);
  };

  const killAll = (): void => {
    for (const p of procs.values()) p.child.kill('SIGKILL');
  };
  // The daemons would outlive a test process that exits without stop(): kill them on the way out.
  process.on('exit', killAll);
  const stop = async (): Promise<void> => {
    process.off('exit', killAll);
    // OSDs first, while the monitor can still take their goodbye.
    const order = [...procs.keys()].sort((a, b) => Number(a.startsWith('mon')) - Number(b.startsWith('mon')));
    for (const name of order) await procs.get(name)!.stop(10_000);
    scratch.remove();
  };

  let poolId = -1;
  const pgNum = opts.pgs ?? 8;
  try {
    run(monmaptool, ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, join(dir, 'monmap')]);
    run(monBin, ['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap')]);
    daemon('mon.a', monBin, ['-i', 'a']);
    await waitFor('ceph-mon to answer', () => {
      exitedEarly('mon.a');
      return run(cephBin, ['-c', conf, '--connect-timeout', '2', 'mon', 'stat'], { allowFail: true, timeoutMs: 10_000 }).status === 0;
    }, 30_000, 250);
    for (let i = 0; i < osds; i++) {
      const uuid = randomUUID();
      const id = Number(ceph(['osd', 'new', uuid]).trim());
      mkdirSync(join(dir, 'osd', String(id)));
      run(osdBin, ['-c', conf, '-i', String(id), '--mkfs', '--osd-uuid', uuid]);
      await startOsd(id);
    }
    ceph(['osd', 'pool', 'create', pool, String(pgNum), String(pgNum), 'replicated']);
    ceph(['osd', 'pool', 'set', pool, 'size', String(size), '--yes-i-really-mean-it']);
    rbd(['pool', 'init', pool]);
    poolId = (JSON.parse(ceph(['osd', 'pool', 'ls', 'detail', '-f', 'json'])) as { pool_id: number; pool_name: string }[]).find((p) => p.pool_name === pool)!.pool_id;
  } catch (e) {
    await stop();
    throw e;
  }

  // Without a manager there is no `ceph pg ls`; each placement group's primary OSD answers.
  const pgStates = (): PgState[] => {
    const out: PgState[] = [];
    for (let i = 0; i < pgNum; i++) {
      const pgid = `${poolId}.${i.toString(16)}`;
      const q = JSON.parse(ceph(['pg', pgid, 'query'])) as { state: string; up: number[]; acting: number[] };
      out.push({ pgid, state: q.state, up: q.up, acting: q.acting });
    }
    return out;
  };

  return {
    dir,
    conf,
    pool,
    osds,
    ceph,
    rbd,
    killOsd: async (id) => {
      const p = procs.get(`osd.${id}`);
      if (!p) throw new Error(`osd.${id} was never started`);
      p.child.kill('SIGKILL');
      await p.exited;
    },
    startOsd,
    markDown: (id) => void ceph(['osd', 'down', String(id)]),
    pgStates,
    waitClean: async (timeoutMs = 120_000) => {
      let last: PgState[] = [];
      await waitFor(`every placement group of pool ${pool} active+clean on ${size} OSDs`, () => {
        last = pgStates();
        return last.every((pg) => pg.state === 'active+clean' && pg.acting.length === size);
      }, timeoutMs, 500).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}; last states: ${last.map((pg) => `${pg.pgid} ${pg.state} [${pg.acting}]`).join(', ')}`);
      });
    },
    stop,
  };
}
