/**
 * The service manager's readiness protocol (systemd Type=notify), without a library: one
 * datagram of `KEY=VALUE` lines to the unix socket named by NOTIFY_SOCKET (a path, or '@' for
 * an abstract name). Without NOTIFY_SOCKET every call does nothing, so serve behaves the same
 * outside a service. A failure to notify is logged once and never stops serving.
 */
import { log } from '../log.js';
import { loadNative } from '../native-addon.js';

export interface ServiceNotifier {
  ready(status: string): void;
  stopping(status: string): void;
  status(status: string): void;
}

export function serviceNotifier(socketPath: string | undefined): ServiceNotifier {
  let warned = false;
  const send = (fields: Record<string, string | number>): void => {
    if (!socketPath) return;
    const text = Object.entries(fields)
      .map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`)
      .join('\n');
    const addon = loadNative();
    const r = addon ? addon.unixDatagram(socketPath, Buffer.from(text + '\n')) : -1;
    if (r !== 0 && !warned) {
      warned = true;
      log.warn(`could not notify the service manager at ${socketPath} (${addon ? `errno ${-r}` : 'native addon unavailable'})`);
    }
  };
  return {
    ready: (status) => send({ READY: 1, STATUS: status, MAINPID: process.pid }),
    stopping: (status) => send({ STOPPING: 1, STATUS: status }),
    status: (status) => send({ STATUS: status }),
  };
}
