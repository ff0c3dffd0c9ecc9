/**
 * The debug switch: NBDCRYPT_DEBUG=1 adds stack traces to error messages. Without it every
 * error a user can meet is one line. Read once, at the first question.
 */
let enabled: boolean | undefined;

export function debugEnabled(): boolean {
  enabled ??= process.env.NBDCRYPT_DEBUG === '1';
  return enabled;
}
