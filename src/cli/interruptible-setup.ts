/**
 * Lets SIGINT/SIGTERM interrupt a command's setup (connecting, asking the passphrase,
 * unlocking), not only its steady state. The setup gets an AbortSignal (the unlock kills its
 * key derivation with it); when the signal comes first the caller returns at once, whatever
 * the setup was waiting for, and a result that arrives later is closed. Anything still
 * holding the event loop open then (a half-open SSH connection, a terminal prompt) must not
 * keep the process alive: after a grace period it exits with the status already set.
 */
const GRACE_MS = 2000;

export type SetupResult<T> = { value: T } | { interrupted: string };

export async function untilSignal<T>(stop: Promise<string>, setup: (signal: AbortSignal) => Promise<T>, closeLate: (value: T) => Promise<void>): Promise<SetupResult<T>> {
  const controller = new AbortController();
  const work = setup(controller.signal);
  const first: SetupResult<T> = await Promise.race([work.then((value) => ({ value })), stop.then((sig) => ({ interrupted: sig }))]);
  if (!('interrupted' in first)) return first;
  controller.abort();
  work.then(closeLate).catch(() => undefined);
  setTimeout(() => process.exit(), GRACE_MS).unref();
  return first;
}
