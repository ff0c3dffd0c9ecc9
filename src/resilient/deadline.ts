/**
 * Waiting with a deadline, for the bounded parts of closing: the promise keeps running
 * after the deadline; only the wait for it ends.
 */

/** Waits for `p` until `deadline` (Date.now() ms): 'done', its error, or 'late'. */
export async function beforeDeadline(p: Promise<unknown>, deadline: number): Promise<'done' | 'late' | Error> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([p.then(() => 'done' as const, (e: unknown) => (e instanceof Error ? e : new Error(String(e)))), late]);
  } finally {
    clearTimeout(timer);
  }
}
