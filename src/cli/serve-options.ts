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
import type { AttachOptions } from './serve-attach.js';
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
  attach?: AttachOptions;
  targetOptions: TargetOptions;
  /** Unlock even if the header asks for a KDF cost above nbdcrypt's bounds (--allow-costly-kdf). */
  allowCostlyKdf: boolean;
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
    'allow-costly-kdf': { type: 'boolean', default: false },
    'allow-discards': { type: 'boolean', default: false },
    cache: { type: 'string', default: '64M' },
    'stats-interval': { type: 'string', default: '0' },
    attach: { type: 'string' },
    'attach-with': { type: 'string', default: 'netlink' },
    'attach-connections': { type: 'string', default: '1' },
    'reattach-timeout': { type: 'string', default: '300' },
    'kernel-timeout': { type: 'string', default: '5' },
  });
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    throw new NbdcryptError('EUSAGE', `serve: expected exactly one TARGET, got ${positionals.length}; see 'nbdcrypt serve --help'`);
  }
  const keySlot = values['key-slot'];
  if (keySlot !== undefined && !/^\d+$/.test(keySlot)) throw new NbdcryptError('EUSAGE', `serve: --key-slot '${keySlot}' must be a keyslot number (0-31)`);
  const statsInterval = Number(values['stats-interval']);
  if (!Number.isFinite(statsInterval) || statsInterval < 0) throw new NbdcryptError('EUSAGE', `serve: --stats-interval '${values['stats-interval']}' must be a number of seconds >= 0`);
  let attach: AttachOptions | undefined;
  if (values.attach !== undefined) {
    const via = values['attach-with'];
    if (via !== 'netlink' && via !== 'nbd-client') throw new NbdcryptError('EUSAGE', `serve: --attach-with '${via}' must be netlink or nbd-client`);
    const connections = Number(values['attach-connections']);
    if (!Number.isInteger(connections) || connections < 1 || connections > 16) throw new NbdcryptError('EUSAGE', 'serve: --attach-connections must be a whole number from 1 to 16');
    attach = {
      device: values.attach,
      with: via,
      connections,
      reattachTimeoutS: Number(values['reattach-timeout']),
      requestTimeoutS: Number(values['kernel-timeout']),
    };
  }
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
    allowCostlyKdf: values['allow-costly-kdf'] ?? false,
  };
}
