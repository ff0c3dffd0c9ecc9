/**
 * `nbdcrypt serve` arguments → ServeOptions: the one place that checks them, so every mistake
 * is one EUSAGE line (exit 2) before anything is opened or asked. `demo` builds its serve
 * options with the same parser.
 */
import { parseCommandArgs } from './args.js';
import { NbdcryptError } from '../errors.js';
import type { TargetOptions } from '../backend/open-target.js';
import { parseSize } from '../size.js';
import type { Environment } from './environment.js';
import { targetArgOptions, targetOptionsFromArgs } from './target-options.js';

/** Default --replay-limit for serve: unflushed ciphertext kept for replay lives in RAM. */
const SERVE_REPLAY_LIMIT = 32 * 2 ** 20;

export interface ServeOptions {
  target: string;
  unencrypted: boolean;
  listen: string[];
  listenAny: boolean;
  name: string;
  readOnly: boolean;
  keyFile?: string;
  keySlot?: number;
  allowDiscards: boolean;
  /** Plaintext cache bytes (0 = off). */
  cacheBytes: number;
  statsInterval: number;
  attach?: string;
  targetOptions: TargetOptions;
}

export function parseServeArgs(argv: string[], env: Environment): ServeOptions {
  const parsed = parseCommandArgs('serve', argv, {
    ...targetArgOptions,
    unencrypted: { type: 'boolean', default: false },
    listen: { type: 'string', multiple: true, default: [] },
    'listen-any': { type: 'boolean', default: false },
    name: { type: 'string', default: 'disk' },
    'read-only': { type: 'boolean', default: false },
    'key-file': { type: 'string' },
    'key-slot': { type: 'string' },
    'allow-discards': { type: 'boolean', default: false },
    cache: { type: 'string', default: '64M' },
    'stats-interval': { type: 'string', default: '0' },
    attach: { type: 'string' },
  });
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    throw new NbdcryptError('EUSAGE', `serve: expected exactly one TARGET, got ${positionals.length}; see 'nbdcrypt serve --help'`);
  }
  const keySlot = values['key-slot'];
  if (keySlot !== undefined && !/^\d+$/.test(keySlot)) throw new NbdcryptError('EUSAGE', `serve: --key-slot '${keySlot}' must be a keyslot number (0-31)`);
  const statsInterval = Number(values['stats-interval']);
  if (!Number.isFinite(statsInterval) || statsInterval < 0) throw new NbdcryptError('EUSAGE', `serve: --stats-interval '${values['stats-interval']}' must be a number of seconds >= 0`);
  const attach = values.attach;
  if (attach !== undefined && !/^\/dev\/nbd\d+$/.test(attach)) throw new NbdcryptError('EUSAGE', `serve: --attach '${attach}' must be an NBD device such as /dev/nbd0`);
  const readOnly = values['read-only'] ?? false;
  const targetOptions = targetOptionsFromArgs(values, env, readOnly);
  targetOptions.replayLimit ??= SERVE_REPLAY_LIMIT;
  return {
    target: positionals[0]!,
    unencrypted: values.unencrypted ?? false,
    listen: values.listen ?? [],
    listenAny: values['listen-any'] ?? false,
    name: values.name ?? 'disk',
    readOnly,
    keyFile: values['key-file'],
    keySlot: keySlot === undefined ? undefined : Number(keySlot),
    allowDiscards: values['allow-discards'] ?? false,
    cacheBytes: parseSize(values.cache ?? '64M', '--cache'),
    statsInterval,
    attach,
    targetOptions,
  };
}
