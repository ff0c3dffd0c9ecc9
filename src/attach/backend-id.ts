/**
 * The backend identifier a device is bound with: the volume's UUID plus the target, so that a
 * reattach can only ever hand a mounted device the very volume it had (the kernel refuses a
 * reconfigure whose identifier differs). The kernel keeps it as a string of at most a page;
 * the target part is shortened to keep the whole well below that, and never holds secrets
 * (user@host/path only; a target URI carries no password).
 */
const MAX_TARGET_CHARS = 200;

export function backendIdentifier(volumeUuid: string, target: string): string {
  const t = target.length > MAX_TARGET_CHARS ? target.slice(0, MAX_TARGET_CHARS) : target;
  return `nbdcrypt:${volumeUuid}:${t}`;
}

/** The volume UUID inside an identifier we made, or undefined for one made by someone else. */
export function volumeOfBackend(id: string): string | undefined {
  const m = /^nbdcrypt:([0-9a-fA-F-]{36}):/.exec(id);
  return m ? m[1]!.toLowerCase() : undefined;
}
