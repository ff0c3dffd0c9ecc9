/**
 * Diagnostics on standard error, one line each, prefixed with the program name. Standard
 * output is kept for what a command produces (dump, bench --json). Never log secrets.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

const order: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
/** The CLI sets it from NBDCRYPT_LOG at start-up (cli/environment.ts). */
let threshold: LogLevel = 'info';

export function setLogLevel(level: LogLevel): void {
  threshold = level;
}

function emit(level: LogLevel, msg: string): void {
  if (order[level] > order[threshold]) return;
  const tag = level === 'info' ? '' : `${level}: `;
  process.stderr.write(`nbdcrypt: ${tag}${msg}\n`);
}

export const log = {
  error: (msg: string) => emit('error', msg),
  warn: (msg: string) => emit('warn', msg),
  info: (msg: string) => emit('info', msg),
  debug: (msg: string) => emit('debug', msg),
};
