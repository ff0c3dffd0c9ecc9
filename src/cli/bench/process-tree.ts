/**
 * Finding and killing a helper's whole process tree from /proc, for the loopback peers that
 * fork per connection (nbd-server's children, sshd's session processes): a plain SIGTERM of
 * the listener leaves those behind. Shipped with `nbdcrypt bench e2e`; the test and bench
 * peers (peers/) use the same functions.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { waitUntil } from './e2e-procs.js';

/** Parent PID of every process, as parent → children. */
function childrenByParent(): Map<number, number[]> {
  const parent = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(ppid, [...(parent.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone while we looked
    }
  }
  return parent;
}

/** PIDs whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  return childrenByParent().get(pid) ?? [];
}

/** `pid` and all its descendants, parents first. */
export function processTree(pid: number): number[] {
  const parent = childrenByParent();
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(parent.get(out[i]!) ?? []));
  return out;
}

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

/** SIGKILLs `pids` (by PID, never by name) and waits, bounded, until all are gone. */
export async function killAll(pids: readonly number[], what: string, timeoutMs = 10_000): Promise<void> {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await waitUntil(what, () => pids.every((p) => !isAlive(p)), timeoutMs);
}
